/// Applies compiled ``SchemaNode``s to an instance.
///
/// Two modes share one code path: collecting (``JSONSchema/validate(_:)``) keeps the instance
/// path and records every violation; probing (``JSONSchema/isValid(_:)``, and the branches of
/// `anyOf`, `oneOf`, `not`, `if` and `contains`, whose failures are not the caller's) stops at
/// the first failure and builds no strings at all, which is what keeps validation cheap on the
/// hot path.
struct SchemaEvaluator {
    private enum PathToken {
        case member(String)
        case index(Int)
    }

    /// Far deeper than any real schema and instance; reached only by a hand-built instance
    /// nested absurdly deep, which is then refused instead of exhausting the stack.
    private static let maxDepth = 1_000

    /// The schema's node table, borrowed for the duration of one validation: reading nodes in
    /// place avoids copying (and retaining every array in) a node at each step.
    private let nodes: UnsafeBufferPointer<SchemaNode>
    private(set) var violations: [SchemaViolation] = []
    private var collecting: Bool
    private var path: [PathToken] = []
    private var depth = 0

    /// - Important: `nodes` must stay valid for as long as the evaluator is used.
    init(nodes: UnsafeBufferPointer<SchemaNode>, collecting: Bool) {
        self.nodes = nodes
        self.collecting = collecting
    }

    // MARK: Reporting

    private var instancePath: String {
        var text = ""
        for token in path {
            text += "/"
            switch token {
            case .member(let name): text += JSONPointer.escape(name)
            case .index(let index): text += String(index)
            }
        }
        return text
    }

    private mutating func report(_ node: UnsafePointer<SchemaNode>, _ keyword: String, _ message: String, member: String? = nil) {
        var location = instancePath
        if let member { location += "/" + JSONPointer.escape(member) }
        violations.append(
            SchemaViolation(
                instancePath: location, schemaPath: node.pointee.path + "/" + keyword, keyword: keyword, message: message))
    }

    // MARK: Evaluation

    /// Evaluates a subschema against a member of the current instance.
    private mutating func evaluate(_ index: Int, _ value: JSONValue, member: String) -> Bool {
        guard collecting else { return evaluate(index, value) }
        path.append(.member(member))
        defer { path.removeLast() }
        return evaluate(index, value)
    }

    /// Evaluates a subschema against an element of the current instance.
    private mutating func evaluate(_ index: Int, _ value: JSONValue, element: Int) -> Bool {
        guard collecting else { return evaluate(index, value) }
        path.append(.index(element))
        defer { path.removeLast() }
        return evaluate(index, value)
    }

    /// Evaluates without recording anything, for keywords that only need a yes or no.
    private mutating func probe(_ index: Int, _ value: JSONValue) -> Bool {
        let saved = collecting
        collecting = false
        defer { collecting = saved }
        return evaluate(index, value)
    }

    mutating func evaluate(_ index: Int, _ instance: JSONValue) -> Bool {
        let node = nodes.baseAddress.unsafelyUnwrapped + index
        if let always = node.pointee.alwaysValid {
            if !always && collecting {
                violations.append(
                    SchemaViolation(
                        instancePath: instancePath, schemaPath: node.pointee.path, keyword: "false",
                        message: "no value is allowed here (the schema is false)"))
            }
            return always
        }
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else {
            if collecting { report(node, "$ref", "instance nested too deeply to validate") }
            return false
        }
        var valid = true

        if let types = node.pointee.types, !types.contains(where: { Self.instance(instance, hasType: $0) }) {
            guard collecting else { return false }
            valid = false
            let expected = types.map(\.rawValue).joined(separator: " or ")
            report(node, "type", "expected \(expected), got \(Self.typeName(instance))")
        }
        if let values = node.pointee.enumValues, !values.contains(instance) {
            guard collecting else { return false }
            valid = false
            report(node, "enum", "expected one of \(Self.abbreviated(values)), got \(Self.typeName(instance))")
        }
        if let constant = node.pointee.constValue, constant != instance {
            guard collecting else { return false }
            valid = false
            report(node, "const", "expected \(Self.abbreviated([constant]))")
        }
        if let ref = node.pointee.ref, !evaluate(ref, instance) {
            guard collecting else { return false }
            valid = false
        }

        switch instance {
        case .number(let number):
            if !evaluateNumber(node, number) {
                guard collecting else { return false }
                valid = false
            }
        case .string(let text):
            if !evaluateString(node, text) {
                guard collecting else { return false }
                valid = false
            }
        case .array(let elements):
            if !evaluateArray(node, elements) {
                guard collecting else { return false }
                valid = false
            }
        case .object(let object):
            if !evaluateObject(node, object) {
                guard collecting else { return false }
                valid = false
            }
        case .null, .bool:
            break
        }

        for schema in node.pointee.allOf where !evaluate(schema, instance) {
            guard collecting else { return false }
            valid = false
        }
        if !node.pointee.anyOf.isEmpty, !node.pointee.anyOf.contains(where: { probe($0, instance) }) {
            guard collecting else { return false }
            valid = false
            report(node, "anyOf", "expected to match at least one of \(node.pointee.anyOf.count) subschemas, matched none")
        }
        if !node.pointee.oneOf.isEmpty {
            var matches = 0
            for schema in node.pointee.oneOf where probe(schema, instance) {
                matches += 1
                if matches > 1 { break }
            }
            if matches != 1 {
                guard collecting else { return false }
                valid = false
                report(
                    node, "oneOf",
                    "expected to match exactly one of \(node.pointee.oneOf.count) subschemas, matched \(matches == 0 ? "none" : "more than one")")
            }
        }
        if let not = node.pointee.not, probe(not, instance) {
            guard collecting else { return false }
            valid = false
            report(node, "not", "expected not to match the schema under \"not\"")
        }
        if let condition = node.pointee.ifNode {
            let branch = probe(condition, instance) ? node.pointee.thenNode : node.pointee.elseNode
            if let branch, !evaluate(branch, instance) {
                guard collecting else { return false }
                valid = false
            }
        }
        return valid
    }

    private mutating func evaluateNumber(_ node: UnsafePointer<SchemaNode>, _ number: JSONNumber) -> Bool {
        var valid = true
        if let minimum = node.pointee.minimum, number < minimum {
            guard collecting else { return false }
            valid = false
            report(node, "minimum", "expected at least \(minimum), got \(number)")
        }
        if let maximum = node.pointee.maximum, maximum < number {
            guard collecting else { return false }
            valid = false
            report(node, "maximum", "expected at most \(maximum), got \(number)")
        }
        if let bound = node.pointee.exclusiveMinimum, !(bound < number) {
            guard collecting else { return false }
            valid = false
            report(node, "exclusiveMinimum", "expected more than \(bound), got \(number)")
        }
        if let bound = node.pointee.exclusiveMaximum, !(number < bound) {
            guard collecting else { return false }
            valid = false
            report(node, "exclusiveMaximum", "expected less than \(bound), got \(number)")
        }
        if let divisor = node.pointee.multipleOf, !number.isMultiple(of: divisor) {
            guard collecting else { return false }
            valid = false
            report(node, "multipleOf", "expected a multiple of \(divisor), got \(number)")
        }
        return valid
    }

    private mutating func evaluateString(_ node: UnsafePointer<SchemaNode>, _ text: String) -> Bool {
        var valid = true
        if node.pointee.minLength != nil || node.pointee.maxLength != nil {
            // JSON Schema counts code points: count the bytes that start a UTF-8 sequence.
            var length = 0
            for byte in text.utf8 where byte & 0xC0 != 0x80 { length += 1 }
            if let minimum = node.pointee.minLength, length < minimum {
                guard collecting else { return false }
                valid = false
                report(node, "minLength", "expected at least \(minimum) characters, got \(length)")
            }
            if let maximum = node.pointee.maxLength, length > maximum {
                guard collecting else { return false }
                valid = false
                report(node, "maxLength", "expected at most \(maximum) characters, got \(length)")
            }
        }
        if let pattern = node.pointee.pattern, !pattern.matches(text) {
            guard collecting else { return false }
            valid = false
            // The value itself stays out of the message: it may be personal data.
            report(node, "pattern", "expected a string matching the pattern \(pattern.source)")
        }
        return valid
    }

    private mutating func evaluateArray(_ node: UnsafePointer<SchemaNode>, _ elements: [JSONValue]) -> Bool {
        var valid = true
        if let minimum = node.pointee.minItems, elements.count < minimum {
            guard collecting else { return false }
            valid = false
            report(node, "minItems", "expected at least \(minimum) items, got \(elements.count)")
        }
        if let maximum = node.pointee.maxItems, elements.count > maximum {
            guard collecting else { return false }
            valid = false
            report(node, "maxItems", "expected at most \(maximum) items, got \(elements.count)")
        }
        if node.pointee.uniqueItems, let (first, second) = Self.firstDuplicate(in: elements) {
            guard collecting else { return false }
            valid = false
            report(node, "uniqueItems", "expected unique items, but items \(first) and \(second) are equal")
        }
        for (offset, schema) in node.pointee.prefixItems.enumerated() where offset < elements.count {
            if !evaluate(schema, elements[offset], element: offset) {
                guard collecting else { return false }
                valid = false
            }
        }
        if let items = node.pointee.items, elements.count > node.pointee.prefixItems.count {
            for offset in node.pointee.prefixItems.count..<elements.count where !evaluate(items, elements[offset], element: offset) {
                guard collecting else { return false }
                valid = false
            }
        }
        if let contains = node.pointee.contains {
            let minimum = node.pointee.minContains ?? 1
            var matching = 0
            for element in elements where probe(contains, element) { matching += 1 }
            if matching < minimum {
                guard collecting else { return false }
                valid = false
                let keyword = node.pointee.minContains == nil ? "contains" : "minContains"
                report(node, keyword, "expected at least \(minimum) item(s) matching \"contains\", got \(matching)")
            }
            if let maximum = node.pointee.maxContains, matching > maximum {
                guard collecting else { return false }
                valid = false
                report(node, "maxContains", "expected at most \(maximum) item(s) matching \"contains\", got \(matching)")
            }
        }
        return valid
    }

    private mutating func evaluateObject(_ node: UnsafePointer<SchemaNode>, _ object: JSONObject) -> Bool {
        var valid = true
        if let minimum = node.pointee.minProperties, object.count < minimum {
            guard collecting else { return false }
            valid = false
            report(node, "minProperties", "expected at least \(minimum) properties, got \(object.count)")
        }
        if let maximum = node.pointee.maxProperties, object.count > maximum {
            guard collecting else { return false }
            valid = false
            report(node, "maxProperties", "expected at most \(maximum) properties, got \(object.count)")
        }
        let ascii = node.pointee.memberNamesAreASCII
        for name in node.pointee.required where object.value(named: name, isASCII: ascii) == nil {
            guard collecting else { return false }
            valid = false
            report(node, "required", "missing required property \"\(name)\"")
        }
        for (name, required) in node.pointee.dependentRequired where object.value(named: name, isASCII: ascii) != nil {
            for other in required where object.value(named: other, isASCII: ascii) == nil {
                guard collecting else { return false }
                valid = false
                report(node, "dependentRequired", "property \"\(name)\" requires property \"\(other)\", which is missing")
            }
        }
        guard node.pointee.appliesToMembers else { return valid }
        if node.pointee.patternProperties.isEmpty && node.pointee.additionalProperties == nil {
            // Only `properties`: look each one up instead of matching every member.
            for (name, schema) in node.pointee.properties {
                guard let value = object.value(named: name, isASCII: ascii) else { continue }
                if !evaluate(schema, value, member: name) {
                    guard collecting else { return false }
                    valid = false
                }
            }
            return valid
        }
        for (name, value) in object.members {
            var matched = false
            // By code point: a canonically equivalent name is another member (JSON's equality).
            for property in node.pointee.properties
            where ascii ? name.hasSameCodePoints(asASCII: property.name) : property.name.hasSameCodePoints(as: name) {
                matched = true
                if !evaluate(property.node, value, member: name) {
                    guard collecting else { return false }
                    valid = false
                }
            }
            for property in node.pointee.patternProperties where property.pattern.matches(name) {
                matched = true
                if !evaluate(property.node, value, member: name) {
                    guard collecting else { return false }
                    valid = false
                }
            }
            if !matched, let additional = node.pointee.additionalProperties {
                if nodes[additional].alwaysValid == false {
                    guard collecting else { return false }
                    valid = false
                    report(node, "additionalProperties", "property \"\(name)\" is not allowed", member: name)
                } else if !evaluate(additional, value, member: name) {
                    guard collecting else { return false }
                    valid = false
                }
            }
        }
        return valid
    }

    // MARK: Helpers

    static func instance(_ instance: JSONValue, hasType type: SchemaNode.TypeName) -> Bool {
        switch (type, instance) {
        case (.null, .null), (.boolean, .bool), (.object, .object), (.array, .array), (.number, .number),
            (.string, .string):
            true
        case (.integer, .number(let number)): number.isInteger
        default: false
        }
    }

    static func typeName(_ instance: JSONValue) -> String {
        switch instance {
        case .null: "null"
        case .bool: "boolean"
        case .object: "object"
        case .array: "array"
        case .number(let number): number.isInteger ? "integer" : "number"
        case .string: "string"
        }
    }

    /// Schema values for a message, cut short so a large `enum` does not flood logs.
    static func abbreviated(_ values: [JSONValue]) -> String {
        var text = ""
        for (offset, value) in values.enumerated() {
            if offset > 0 { text += ", " }
            if text.utf8.count > 120 { return text + "…" }
            text += value.serialized()
        }
        return text
    }

    /// The positions of the first two equal elements, by JSON Schema equality.
    static func firstDuplicate(in elements: [JSONValue]) -> (Int, Int)? {
        guard elements.count > 1 else { return nil }
        // Hashing keeps this linear: a hostile array of a million items must not cost 10^12 steps.
        var seen: [JSONValue: Int] = [:]
        seen.reserveCapacity(elements.count)
        for (offset, element) in elements.enumerated() {
            if let earlier = seen[element] { return (earlier, offset) }
            seen[element] = offset
        }
        return nil
    }
}
