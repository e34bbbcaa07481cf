/// Applies compiled ``SchemaNode``s to an instance.
struct SchemaEvaluator {
    let nodes: [SchemaNode]
    /// Collect every violation (``JSONSchema/validate(_:)``) or stop at the first (``JSONSchema/isValid(_:)``).
    let collect: Bool
    private var depth = 0

    init(nodes: [SchemaNode], collect: Bool) {
        self.nodes = nodes
        self.collect = collect
    }

    /// Deep enough for any real schema; a `$ref` loop that consumes nothing stops here.
    private static let maxDepth = 200

    mutating func evaluate(_ index: Int, _ instance: JSONValue, instancePath: String, violations: inout [SchemaViolation]) -> Bool {
        let node = nodes[index]
        if let always = node.alwaysValid {
            if !always {
                violations.append(SchemaViolation(instancePath: instancePath, schemaPath: node.path, keyword: "false", message: "no value is allowed here"))
            }
            return always
        }
        depth += 1
        defer { depth -= 1 }
        guard depth <= Self.maxDepth else {
            violations.append(SchemaViolation(instancePath: instancePath, schemaPath: node.path, keyword: "$ref", message: "schema recursion deeper than \(Self.maxDepth)"))
            return false
        }
        var valid = true
        func fail(_ keyword: String, _ message: String, at path: String? = nil) {
            valid = false
            violations.append(SchemaViolation(
                instancePath: path ?? instancePath, schemaPath: node.path + "/" + keyword, keyword: keyword, message: message))
        }
        func done() -> Bool { !valid && !collect }

        if let types = node.types, !types.contains(where: { Self.matches($0, instance) }) {
            fail("type", "expected \(types.map(\.rawValue).joined(separator: " or ")), got \(Self.typeName(instance))")
            if done() { return false }
        }
        if let values = node.enumValues, !values.contains(instance) {
            fail("enum", "expected one of \(values.map { $0.serialized() }.joined(separator: ", "))")
            if done() { return false }
        }
        if let constant = node.constValue, constant != instance {
            fail("const", "expected \(constant.serialized())")
            if done() { return false }
        }
        if let ref = node.ref {
            var nested: [SchemaViolation] = []
            if !evaluate(ref, instance, instancePath: instancePath, violations: &nested) {
                valid = false
                violations.append(contentsOf: nested)
                if done() { return false }
            }
        }

        switch instance {
        case .number(let number):
            if let minimum = node.minimum, number < minimum { fail("minimum", "expected at least \(minimum)") }
            if let maximum = node.maximum, maximum < number { fail("maximum", "expected at most \(maximum)") }
            if let bound = node.exclusiveMinimum, !(bound < number) { fail("exclusiveMinimum", "expected more than \(bound)") }
            if let bound = node.exclusiveMaximum, !(number < bound) { fail("exclusiveMaximum", "expected less than \(bound)") }
            if let divisor = node.multipleOf, !number.isMultiple(of: divisor) { fail("multipleOf", "expected a multiple of \(divisor)") }
        case .string(let text):
            if node.minLength != nil || node.maxLength != nil {
                let length = text.unicodeScalars.count
                if let minimum = node.minLength, length < minimum { fail("minLength", "expected at least \(minimum) characters, got \(length)") }
                if let maximum = node.maxLength, length > maximum { fail("maxLength", "expected at most \(maximum) characters, got \(length)") }
            }
            if let pattern = node.pattern, !pattern.matches(text) { fail("pattern", "expected to match \(pattern.source)") }
        case .array(let elements):
            if let minimum = node.minItems, elements.count < minimum { fail("minItems", "expected at least \(minimum) items, got \(elements.count)") }
            if let maximum = node.maxItems, elements.count > maximum { fail("maxItems", "expected at most \(maximum) items, got \(elements.count)") }
            if node.uniqueItems, Set(elements).count != elements.count { fail("uniqueItems", "expected unique items") }
            if done() { return false }
            for (offset, schema) in node.prefixItems.enumerated() where offset < elements.count {
                if !evaluate(schema, elements[offset], instancePath: collect ? instancePath + "/\(offset)" : instancePath, violations: &violations) {
                    valid = false
                    if done() { return false }
                }
            }
            if let items = node.items {
                for offset in node.prefixItems.count..<max(node.prefixItems.count, elements.count) {
                    if !evaluate(items, elements[offset], instancePath: collect ? instancePath + "/\(offset)" : instancePath, violations: &violations) {
                        valid = false
                        if done() { return false }
                    }
                }
            }
            if let contains = node.contains {
                var ignored: [SchemaViolation] = []
                var matching = 0
                for (offset, element) in elements.enumerated() {
                    var probe = SchemaEvaluator(nodes: nodes, collect: false)
                    probe.depth = depth
                    if probe.evaluate(contains, element, instancePath: instancePath + "/\(offset)", violations: &ignored) { matching += 1 }
                }
                let minimum = node.minContains ?? 1
                if matching < minimum { fail("contains", "expected at least \(minimum) matching item(s), got \(matching)") }
                if let maximum = node.maxContains, matching > maximum { fail("maxContains", "expected at most \(maximum) matching item(s), got \(matching)") }
            }
        case .object(let object):
            if let minimum = node.minProperties, object.count < minimum { fail("minProperties", "expected at least \(minimum) properties") }
            if let maximum = node.maxProperties, object.count > maximum { fail("maxProperties", "expected at most \(maximum) properties") }
            for name in node.required where object[name] == nil {
                fail("required", "missing required property \"\(name)\"")
                if done() { return false }
            }
            for (name, required) in node.dependentRequired where object[name] != nil {
                for other in required where object[other] == nil {
                    fail("dependentRequired", "\"\(name)\" requires \"\(other)\"")
                }
            }
            if done() { return false }
            if !node.properties.isEmpty || !node.patternProperties.isEmpty || node.additionalProperties != nil {
                for (name, value) in object.members {
                    // Paths are only built when violations are collected: a yes/no pass needs none.
                    let memberPath = collect ? instancePath + "/" + JSONPointer.escape(name) : instancePath
                    var matched = false
                    for property in node.properties where property.name == name {
                        matched = true
                        if !evaluate(property.node, value, instancePath: memberPath, violations: &violations) {
                            valid = false
                            if done() { return false }
                        }
                    }
                    for property in node.patternProperties where property.pattern.matches(name) {
                        matched = true
                        if !evaluate(property.node, value, instancePath: memberPath, violations: &violations) {
                            valid = false
                            if done() { return false }
                        }
                    }
                    if !matched, let additional = node.additionalProperties {
                        var nested: [SchemaViolation] = []
                        if !evaluate(additional, value, instancePath: memberPath, violations: &nested) {
                            if nodes[additional].alwaysValid == false {
                                fail("additionalProperties", "property \"\(name)\" is not allowed", at: memberPath)
                            } else {
                                valid = false
                                violations.append(contentsOf: nested)
                            }
                            if done() { return false }
                        }
                    }
                }
            }
        default:
            break
        }
        if done() { return false }

        for schema in node.allOf where !evaluate(schema, instance, instancePath: instancePath, violations: &violations) {
            valid = false
            if done() { return false }
        }
        if !node.anyOf.isEmpty {
            var ignored: [SchemaViolation] = []
            if !node.anyOf.contains(where: { probe($0, instance, instancePath, &ignored) }) {
                fail("anyOf", "expected to match at least one of \(node.anyOf.count) schemas")
            }
        }
        if !node.oneOf.isEmpty {
            var ignored: [SchemaViolation] = []
            let matches = node.oneOf.filter { probe($0, instance, instancePath, &ignored) }.count
            if matches != 1 { fail("oneOf", "expected to match exactly one of \(node.oneOf.count) schemas, matched \(matches)") }
        }
        if let not = node.not {
            var ignored: [SchemaViolation] = []
            if probe(not, instance, instancePath, &ignored) { fail("not", "expected not to match the schema") }
        }
        if let condition = node.ifNode {
            var ignored: [SchemaViolation] = []
            let branch = probe(condition, instance, instancePath, &ignored) ? node.thenNode : node.elseNode
            if let branch, !evaluate(branch, instance, instancePath: instancePath, violations: &violations) {
                valid = false
            }
        }
        return valid
    }

    /// Evaluates without collecting, for combinators that only need a yes or no.
    private mutating func probe(_ index: Int, _ instance: JSONValue, _ instancePath: String, _ ignored: inout [SchemaViolation]) -> Bool {
        var evaluator = SchemaEvaluator(nodes: nodes, collect: false)
        evaluator.depth = depth
        return evaluator.evaluate(index, instance, instancePath: instancePath, violations: &ignored)
    }

    static func matches(_ type: SchemaNode.TypeName, _ instance: JSONValue) -> Bool {
        switch (type, instance) {
        case (.null, .null), (.boolean, .bool), (.object, .object), (.array, .array), (.number, .number), (.string, .string): true
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
}
