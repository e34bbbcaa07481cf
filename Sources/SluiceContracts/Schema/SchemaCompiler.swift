/// Turns a schema document into ``SchemaNode``s, refusing what the validator does not implement.
struct SchemaCompiler {
    static let annotations: Set<String> = [
        "$schema", "$id", "$comment", "title", "description", "default", "examples", "deprecated",
        "readOnly", "writeOnly", "contentMediaType", "contentEncoding", "contentSchema", "format", "$defs",
    ]
    static let assertions: Set<String> = [
        "type", "enum", "const", "properties", "required", "additionalProperties", "patternProperties",
        "items", "prefixItems", "contains", "minContains", "maxContains", "minimum", "maximum",
        "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minLength", "maxLength", "pattern",
        "minItems", "maxItems", "uniqueItems", "minProperties", "maxProperties", "dependentRequired",
        "allOf", "anyOf", "oneOf", "not", "if", "then", "else", "$ref",
    ]

    let document: JSONValue
    let source: String
    var nodes: [SchemaNode] = []
    /// Keyed by code points: the pointers of two canonically equivalent property names are
    /// two schemas, which `String` keys would merge into the first one.
    var nodeByPointer: [CodePointKey: Int] = [:]
    var pendingRefs: [(node: Int, ref: String, path: String)] = []

    init(document: JSONValue, source: String) {
        self.document = document
        self.source = source
    }

    mutating func compile() throws(SluiceError) -> [SchemaNode] {
        _ = try compileNode(document, pointer: "")
        while let pending = pendingRefs.popLast() {
            nodes[pending.node].ref = try resolve(pending.ref, at: pending.path)
        }
        try refuseInPlaceCycles()
        return nodes
    }

    /// Refuses a `$ref` cycle that returns to a schema without stepping into the instance
    /// (`{"$ref": "#"}`, or `a → b → a` through `$ref`, `allOf`, `not`, …): evaluating it would
    /// never end. Cycles through `properties`, `items` and the like are fine, because each step
    /// goes one level down a finite instance.
    private func refuseInPlaceCycles() throws(SluiceError) {
        enum Mark { case unvisited, active, done }
        var marks = [Mark](repeating: .unvisited, count: nodes.count)
        for root in nodes.indices where marks[root] == .unvisited {
            // Iterative depth-first search: (node, index of the next edge to follow).
            var stack: [(node: Int, edge: Int)] = [(root, 0)]
            marks[root] = .active
            while let top = stack.last {
                let edges = nodes[top.node].inPlaceSubschemas
                if top.edge == edges.count {
                    marks[top.node] = .done
                    stack.removeLast()
                    continue
                }
                stack[stack.count - 1].edge += 1
                let next = edges[top.edge]
                switch marks[next] {
                case .active:
                    throw invalid(
                        "the schema at \"\(nodes[next].path)\" refers back to itself through $ref without "
                            + "descending into the instance, so validation would never end",
                        at: nodes[top.node].path)
                case .unvisited:
                    marks[next] = .active
                    stack.append((next, 0))
                case .done:
                    break
                }
            }
        }
    }

    /// The root's `$id` without a fragment, when it has one: refs to it stay inside the document.
    private var rootIdentifier: String? {
        guard case .object(let root) = document, case .string(let id)? = root["$id"] else { return nil }
        return id.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map(String.init)
    }

    /// Whether a ref's URI part (before `#`) names this document: its own `$id`, absolute or
    /// relative to itself.
    private func namesThisDocument(_ base: String) -> Bool {
        guard let rootIdentifier, !rootIdentifier.isEmpty else { return false }
        if base == rootIdentifier { return true }
        guard !base.contains(":") else { return false }
        let resolved: String
        if base.hasPrefix("/") {
            // scheme://authority/path: the authority ends at the first "/" after "//".
            let slashes = rootIdentifier.indices.filter { rootIdentifier[$0] == "/" }
            guard slashes.count >= 2 else { return false }
            let authorityEnd = slashes.count >= 3 ? slashes[2] : rootIdentifier.endIndex
            resolved = rootIdentifier[..<authorityEnd] + base
        } else {
            guard let lastSlash = rootIdentifier.lastIndex(of: "/") else { return false }
            resolved = rootIdentifier[...lastSlash] + base
        }
        return resolved == rootIdentifier
    }

    private func invalid(_ message: String, at path: String) -> SluiceError {
        SluiceError(code: .schemaInvalid, message: "\(source): \(message)", path: path)
    }

    private func unsupported(_ message: String, at path: String) -> SluiceError {
        SluiceError(code: .schemaKeywordUnsupported, message: "\(source): \(message)", path: path)
    }

    private mutating func resolve(_ ref: String, at path: String) throws(SluiceError) -> Int {
        let parts = ref.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false)
        if !ref.hasPrefix("#"), namesThisDocument(String(parts[0])) {
            return try resolve("#" + (parts.count > 1 ? parts[1] : ""), at: path)
        }
        guard ref.hasPrefix("#") else {
            throw unsupported("$ref \"\(ref)\" points outside this document; only refs within the document (\"#…\") are supported", at: path)
        }
        let fragment = String(ref.dropFirst()).removingPercentEncodingForPointer()
        guard fragment.isEmpty || fragment.hasPrefix("/") else {
            throw unsupported("$ref \"\(ref)\" names an anchor; only JSON-pointer refs are supported", at: path)
        }
        if let known = nodeByPointer[CodePointKey(fragment)] { return known }
        guard let target = document.resolve(pointer: fragment) else {
            throw invalid("$ref \"\(ref)\" resolves to nothing in the document", at: path)
        }
        return try compileNode(target, pointer: fragment)
    }

    private mutating func compileNode(_ schema: JSONValue, pointer: String) throws(SluiceError) -> Int {
        if let known = nodeByPointer[CodePointKey(pointer)] { return known }
        let index = nodes.count
        nodes.append(SchemaNode(path: pointer))
        nodeByPointer[CodePointKey(pointer)] = index
        switch schema {
        case .bool(let value):
            nodes[index].alwaysValid = value
            return index
        case .object(let object):
            var node = SchemaNode(path: pointer)
            for (keyword, value) in object.members {
                let path = pointer + "/" + JSONPointer.escape(keyword)
                guard Self.assertions.contains(keyword) || Self.annotations.contains(keyword) else {
                    throw unsupported("keyword \"\(keyword)\" is not supported by Sluice's validator", at: path)
                }
                try compileKeyword(keyword, value, path: path, into: &node, nodeIndex: index)
            }
            node.memberNamesAreASCII = node.properties.allSatisfy { $0.name.isASCII }
                && node.required.allSatisfy(\.isASCII)
                && node.dependentRequired.allSatisfy { $0.name.isASCII && $0.required.allSatisfy(\.isASCII) }
            nodes[index] = node
            return index
        default:
            throw invalid("a schema must be an object or a boolean", at: pointer)
        }
    }

    /// Compiles a regular expression: text that is no ECMA-262 pattern makes the schema invalid;
    /// a valid one the linear-time matcher does not implement is refused like an unsupported
    /// keyword, naming the pattern and its path, because any fallback engine would answer
    /// differently or only within a time limit.
    private func compilePattern(_ text: String, keyword: String, at path: String) throws(SluiceError) -> SchemaPattern {
        do throws(PatternMatcher.CompileError) {
            return try SchemaPattern(text)
        } catch {
            switch error.kind {
            case .syntax:
                throw invalid("\(keyword) \"\(text)\" is not a valid ECMA-262 regular expression: \(error.message)", at: path)
            case .unsupported:
                throw unsupported(
                    "\(keyword) \"\(text)\" is not supported by Sluice's linear-time pattern matcher: \(error.message)",
                    at: path)
            }
        }
    }

    private mutating func subschema(_ value: JSONValue, _ path: String) throws(SluiceError) -> Int {
        try compileNode(value, pointer: path)
    }

    private mutating func subschemas(_ value: JSONValue, _ path: String, keyword: String) throws(SluiceError) -> [Int] {
        guard case .array(let elements) = value, !elements.isEmpty else {
            throw invalid("\(keyword) must be a non-empty array of schemas", at: path)
        }
        var result: [Int] = []
        for (offset, element) in elements.enumerated() { result.append(try subschema(element, path + "/\(offset)")) }
        return result
    }

    private func count(_ value: JSONValue, _ keyword: String, _ path: String) throws(SluiceError) -> Int {
        guard case .number(let number) = value, number.isInteger, number.doubleValue >= 0 else {
            throw invalid("\(keyword) must be a non-negative integer", at: path)
        }
        return number.int64Value.map { Int($0) } ?? Int.max
    }

    private func number(_ value: JSONValue, _ keyword: String, _ path: String) throws(SluiceError) -> JSONNumber {
        guard case .number(let number) = value else { throw invalid("\(keyword) must be a number", at: path) }
        return number
    }

    private func strings(_ value: JSONValue, _ keyword: String, _ path: String) throws(SluiceError) -> [String] {
        guard case .array(let elements) = value else { throw invalid("\(keyword) must be an array of strings", at: path) }
        var result: [String] = []
        for element in elements {
            guard case .string(let text) = element else { throw invalid("\(keyword) must be an array of strings", at: path) }
            result.append(text)
        }
        return result
    }

    private mutating func compileKeyword(
        _ keyword: String, _ value: JSONValue, path: String, into node: inout SchemaNode, nodeIndex: Int
    ) throws(SluiceError) {
        switch keyword {
        case "type":
            let names: [String]
            switch value {
            case .string(let name): names = [name]
            case .array: names = try strings(value, keyword, path)
            default: throw invalid("type must be a string or an array of strings", at: path)
            }
            var types: [SchemaNode.TypeName] = []
            for name in names {
                guard let type = SchemaNode.TypeName(rawValue: name) else { throw invalid("unknown type \"\(name)\"", at: path) }
                types.append(type)
            }
            node.types = types
        case "enum":
            guard case .array(let values) = value else { throw invalid("enum must be an array", at: path) }
            node.enumValues = values
        case "const":
            node.constValue = value
        case "properties":
            guard case .object(let object) = value else { throw invalid("properties must be an object", at: path) }
            for (name, schema) in object.members {
                node.properties.append((name, try subschema(schema, path + "/" + JSONPointer.escape(name))))
            }
        case "patternProperties":
            guard case .object(let object) = value else { throw invalid("patternProperties must be an object", at: path) }
            for (pattern, schema) in object.members {
                let patternPath = path + "/" + JSONPointer.escape(pattern)
                let compiled = try compilePattern(pattern, keyword: "patternProperties key", at: patternPath)
                node.patternProperties.append((compiled, try subschema(schema, patternPath)))
            }
        case "additionalProperties": node.additionalProperties = try subschema(value, path)
        case "required": node.required = try strings(value, keyword, path)
        case "dependentRequired":
            guard case .object(let object) = value else { throw invalid("dependentRequired must be an object", at: path) }
            for (name, list) in object.members {
                node.dependentRequired.append((name, try strings(list, keyword, path + "/" + JSONPointer.escape(name))))
            }
        case "minProperties": node.minProperties = try count(value, keyword, path)
        case "maxProperties": node.maxProperties = try count(value, keyword, path)
        case "prefixItems": node.prefixItems = try subschemas(value, path, keyword: keyword)
        case "items":
            if case .array = value { throw unsupported("items as an array is draft 2019-09 and earlier; use prefixItems", at: path) }
            node.items = try subschema(value, path)
        case "contains": node.contains = try subschema(value, path)
        case "minContains": node.minContains = try count(value, keyword, path)
        case "maxContains": node.maxContains = try count(value, keyword, path)
        case "minItems": node.minItems = try count(value, keyword, path)
        case "maxItems": node.maxItems = try count(value, keyword, path)
        case "uniqueItems":
            guard case .bool(let flag) = value else { throw invalid("uniqueItems must be a boolean", at: path) }
            node.uniqueItems = flag
        case "minimum": node.minimum = try number(value, keyword, path)
        case "maximum": node.maximum = try number(value, keyword, path)
        case "exclusiveMinimum": node.exclusiveMinimum = try number(value, keyword, path)
        case "exclusiveMaximum": node.exclusiveMaximum = try number(value, keyword, path)
        case "multipleOf":
            let divisor = try number(value, keyword, path)
            // Compared exactly: 1e-400 is positive although its Double is 0.
            guard divisor > JSONNumber(Int64(0)) else { throw invalid("multipleOf must be greater than 0", at: path) }
            node.multipleOf = divisor
        case "minLength": node.minLength = try count(value, keyword, path)
        case "maxLength": node.maxLength = try count(value, keyword, path)
        case "pattern":
            guard case .string(let text) = value else { throw invalid("pattern must be a string", at: path) }
            node.pattern = try compilePattern(text, keyword: "pattern", at: path)
        case "allOf": node.allOf = try subschemas(value, path, keyword: keyword)
        case "anyOf": node.anyOf = try subschemas(value, path, keyword: keyword)
        case "oneOf": node.oneOf = try subschemas(value, path, keyword: keyword)
        case "not": node.not = try subschema(value, path)
        case "if": node.ifNode = try subschema(value, path)
        case "then": node.thenNode = try subschema(value, path)
        case "else": node.elseNode = try subschema(value, path)
        case "$ref":
            guard case .string(let ref) = value else { throw invalid("$ref must be a string", at: path) }
            pendingRefs.append((nodeIndex, ref, path))
        case "$defs":
            guard case .object(let object) = value else { throw invalid("$defs must be an object", at: path) }
            for (name, schema) in object.members { _ = try subschema(schema, path + "/" + JSONPointer.escape(name)) }
        case "$schema":
            // Another metaschema may switch vocabularies on or off; only 2020-12's own is understood.
            guard case .string(let uri) = value,
                ["https://json-schema.org/draft/2020-12/schema", "https://json-schema.org/draft/2020-12/schema#"].contains(uri)
            else {
                throw unsupported("$schema \(value.serialized()) is not the draft 2020-12 metaschema", at: path)
            }
        case "$id":
            // Only the document's own id: a nested one would start a new resolution scope.
            guard node.path.isEmpty else {
                throw unsupported("a nested $id (a new resolution scope) is not supported", at: path)
            }
        default:
            break  // annotations: no assertion
        }
    }
}

/// RFC 6901 JSON pointers.
///
/// Works on code points, not `Character`s: a `~` or `/` followed by a combining mark is one
/// `Character` (`"~\u{301}"`), which character-level search would not find.
enum JSONPointer {
    static func escape(_ token: String) -> String {
        guard token.utf8.contains(where: { $0 == UInt8(ascii: "~") || $0 == UInt8(ascii: "/") }) else { return token }
        var result = String.UnicodeScalarView()
        for scalar in token.unicodeScalars {
            switch scalar {
            case "~": result.append(contentsOf: "~0".unicodeScalars)
            case "/": result.append(contentsOf: "~1".unicodeScalars)
            default: result.append(scalar)
            }
        }
        return String(result)
    }

    static func unescape(_ token: Substring.UnicodeScalarView) -> String {
        guard token.contains("~") else { return String(String.UnicodeScalarView(token)) }
        var result = String.UnicodeScalarView()
        var index = token.startIndex
        while index < token.endIndex {
            let scalar = token[index]
            let next = token.index(after: index)
            if scalar == "~", next < token.endIndex, token[next] == "0" || token[next] == "1" {
                result.append(token[next] == "0" ? "~" : "/")
                index = token.index(after: next)
            } else {
                result.append(scalar)
                index = next
            }
        }
        return String(result)
    }
}

extension JSONValue {
    /// The value a JSON pointer (`""` or `/a/0/b`) names, if any.
    func resolve(pointer: String) -> JSONValue? {
        guard !pointer.isEmpty else { return self }
        var current = self
        // Split on the code point "/", not the Character: "/\u{301}" is one Character.
        for token in pointer.unicodeScalars.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
            let name = JSONPointer.unescape(token)
            switch current {
            case .object(let object):
                guard let next = object[name] else { return nil }
                current = next
            case .array(let elements):
                guard let index = Int(name), elements.indices.contains(index) else { return nil }
                current = elements[index]
            default:
                return nil
            }
        }
        return current
    }
}

extension String {
    /// Percent-decoding for the fragment of a `$ref` (URI escapes such as `%22` and `%25`).
    func removingPercentEncodingForPointer() -> String {
        guard contains("%") else { return self }
        var bytes: [UInt8] = []
        var iterator = Array(utf8).makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
