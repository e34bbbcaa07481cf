import Foundation

/// The schema-evolution gate: compares each version of an event type's schema with the one
/// before it and classifies every difference.
///
/// The question each rule answers: can events written at the old version still be read by
/// consumers of the new one, and does nothing they relied on disappear?
///
/// | change | rule | verdict |
/// |---|---|---|
/// | a field added to `required` (new or existing) | `required_field_added` | BREAKING |
/// | a field removed from `properties` | `field_removed` | BREAKING |
/// | a `type` no longer allowed (`integer` counts as within `number`), or a `type` added where there was none | `type_changed` | BREAKING |
/// | a type allowed in addition | `type_widened` | PASS |
/// | `maxLength`/`maxItems`/`maxProperties`/`maxContains`/`maximum`/`exclusiveMaximum` lowered or added | `<keyword>_lowered` / `<keyword>_added` | BREAKING |
/// | `minLength`/`minItems`/`minProperties`/`minContains`/`minimum`/`exclusiveMinimum` raised or added | `<keyword>_raised` / `<keyword>_added` | BREAKING |
/// | the reverse of the two rows above | `…_raised` / `…_lowered` / `…_removed` | PASS |
/// | `pattern` added / changed / removed | `pattern_added` / `pattern_changed` / `pattern_removed` | BREAKING / BREAKING / PASS |
/// | an `enum` value removed, or an `enum` added | `enum_value_removed` / `enum_added` | BREAKING |
/// | an `enum` value added | `enum_value_added` | WARNING |
/// | an `enum` removed | `enum_removed` | PASS |
/// | `additionalProperties: false` added / removed | `additional_properties_forbidden` / `additional_properties_allowed` | BREAKING / PASS |
/// | `const` added / changed / removed | `const_added` / `const_changed` / `const_removed` | BREAKING / BREAKING / PASS |
/// | `uniqueItems: true` added / removed | `unique_items_added` / `unique_items_removed` | BREAKING / PASS |
/// | `multipleOf` added or changed / removed | `multiple_of_changed` / `multiple_of_removed` | BREAKING / PASS |
/// | an optional field added | `optional_field_added` | PASS |
/// | a field no longer required | `field_made_optional` | WARNING |
/// | a subschema replaced by `false` | `schema_forbidden` | BREAKING |
/// | any change to a keyword the checker does not reason about (`allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`, `patternProperties`, `prefixItems`, `contains`, `dependentRequired`, `propertyNames`, …) | `keyword_changed` | BREAKING |
///
/// The comparison recurses into `properties`, `additionalProperties`, `items` and `$defs`, and
/// follows `$ref`s within the document: when the two versions point a `$ref` at different
/// targets, the targets are compared (a node with `$ref` is compared as its target; sibling
/// keywords beside a `$ref` are not). `$ref`s to the same target are compared once, under
/// `$defs`. Annotations (`title`, `description`, `format`, `examples`, …) are ignored.
public enum SchemaCompatibility {
    /// Compares every consecutive pair of versions of every type in `registry`.
    public static func check(_ registry: SchemaRegistry) -> SchemaCompatibilityReport {
        var report = SchemaCompatibilityReport()
        for eventType in registry.eventTypes {
            let entries = registry.entries(of: eventType)
            for (older, newer) in zip(entries, entries.dropFirst()) {
                report.comparisons.append(
                    .init(eventType: eventType, fromVersion: older.version, toVersion: newer.version))
                report.changes += compare(
                    older.schema.document, newer.schema.document, eventType: eventType,
                    fromVersion: older.version, toVersion: newer.version)
            }
        }
        return report
    }

    /// Compares two schema documents.
    ///
    /// - Parameters:
    ///   - old: the older version's schema document.
    ///   - new: the newer version's schema document.
    ///   - eventType: The event type, copied into each ``SchemaChange``.
    ///   - fromVersion: The older version's number, copied into each ``SchemaChange``.
    ///   - toVersion: The newer version's number, copied into each ``SchemaChange``.
    /// - Returns: every change found, in document order.
    public static func compare(
        _ old: JSONValue, _ new: JSONValue, eventType: String = "", fromVersion: Int = 0, toVersion: Int = 0
    ) -> [SchemaChange] {
        var comparer = Comparer(
            oldRoot: old, newRoot: new, eventType: eventType, fromVersion: fromVersion, toVersion: toVersion)
        comparer.compare(old, new, path: "")
        return comparer.changes
    }
}

/// The recursive walk behind ``SchemaCompatibility``; collects changes as it goes.
private struct Comparer {
    let oldRoot: JSONValue
    let newRoot: JSONValue
    let eventType: String
    let fromVersion: Int
    let toVersion: Int
    var changes: [SchemaChange] = []
    /// `$ref` pairs being compared, so recursive definitions end.
    /// By code point: refs to two canonically equivalent names are two targets, not a cycle.
    var refsInProgress: Set<CodePointKey> = []

    /// Keywords with their own rule below; every other keyword that is not an annotation is
    /// compared for equality only.
    static let handledKeywords: Set<String> = [
        "$ref", "$defs", "type", "properties", "required", "additionalProperties", "items", "enum",
        "const", "pattern", "uniqueItems", "multipleOf",
        "maxLength", "maxItems", "maxProperties", "maxContains", "maximum", "exclusiveMaximum",
        "minLength", "minItems", "minProperties", "minContains", "minimum", "exclusiveMinimum",
    ]

    /// Keywords that never change what validates.
    static let annotationKeywords: Set<String> = [
        "$schema", "$id", "$comment", "$anchor", "title", "description", "default", "examples",
        "format", "deprecated", "readOnly", "writeOnly", "contentMediaType", "contentEncoding",
    ]

    static let upperBounds = ["maxLength", "maxItems", "maxProperties", "maxContains", "maximum", "exclusiveMaximum"]
    static let lowerBounds = ["minLength", "minItems", "minProperties", "minContains", "minimum", "exclusiveMinimum"]

    mutating func record(_ path: String, _ rule: String, _ verdict: CompatibilityVerdict, _ detail: String) {
        changes.append(
            SchemaChange(
                eventType: eventType, fromVersion: fromVersion, toVersion: toVersion, path: path, rule: rule,
                verdict: verdict, detail: detail))
    }

    mutating func compare(_ old: JSONValue, _ new: JSONValue, path: String) {
        // Equal subschemas cannot differ anywhere below; this also ends the walk at `true`.
        if old == new { return }
        // Boolean schemas: `true` accepts anything, like `{}`; `false` accepts nothing.
        if case .bool(false) = new {
            if old != .bool(false) { record(path, "schema_forbidden", .breaking, "the subschema became false") }
            return
        }
        if case .bool(false) = old {
            record(path, "schema_allowed", .pass, "the subschema was false")
            return
        }
        let oldObject = Self.object(old)
        let newObject = Self.object(new)

        let oldRef = Self.string(oldObject["$ref"])
        let newRef = Self.string(newObject["$ref"])
        if oldRef != newRef {
            compareReferences(old: oldObject, oldRef: oldRef, new: newObject, newRef: newRef, path: path)
            return
        }

        compareType(oldObject["type"], newObject["type"], path: path)
        compareProperties(oldObject, newObject, path: path)
        compareAdditionalProperties(oldObject["additionalProperties"], newObject["additionalProperties"], path: path)
        if oldObject["items"] != nil || newObject["items"] != nil {
            compare(oldObject["items"] ?? .bool(true), newObject["items"] ?? .bool(true), path: path + "/items")
        }
        compareDefinitions(oldObject, newObject, path: path)
        compareEnum(oldObject["enum"], newObject["enum"], path: path)
        compareConst(oldObject["const"], newObject["const"], path: path)
        comparePattern(oldObject["pattern"], newObject["pattern"], path: path)
        for keyword in Self.upperBounds {
            compareBound(keyword, oldObject[keyword], newObject[keyword], path: path, narrowsWhenLower: true)
        }
        for keyword in Self.lowerBounds {
            compareBound(keyword, oldObject[keyword], newObject[keyword], path: path, narrowsWhenLower: false)
        }
        compareUniqueItems(oldObject["uniqueItems"], newObject["uniqueItems"], path: path)
        compareMultipleOf(oldObject["multipleOf"], newObject["multipleOf"], path: path)
        compareOtherKeywords(oldObject, newObject, path: path)
    }

    mutating func compareReferences(
        old: JSONObject, oldRef: String?, new: JSONObject, newRef: String?, path: String
    ) {
        let oldTarget = oldRef.map { Self.resolve($0, in: oldRoot) } ?? .object(old)
        let newTarget = newRef.map { Self.resolve($0, in: newRoot) } ?? .object(new)
        guard let oldTarget, let newTarget else {
            record(
                path, "ref_changed", .breaking,
                "$ref \(oldRef ?? "none") → \(newRef ?? "none"); a target outside the document cannot be compared")
            return
        }
        let key = CodePointKey("\(oldRef ?? path)|\(newRef ?? path)")
        guard !refsInProgress.contains(key) else { return }
        refsInProgress.insert(key)
        compare(oldTarget, newTarget, path: path)
        refsInProgress.remove(key)
    }

    mutating func compareType(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        let oldTypes = Self.types(old)
        let newTypes = Self.types(new)
        if oldTypes == newTypes { return }
        guard let newTypes else {
            record(path, "type_widened", .pass, "type \(Self.describe(old)) → any")
            return
        }
        guard let oldTypes else {
            record(path, "type_changed", .breaking, "type any → \(Self.describe(new))")
            return
        }
        let covered = { (type: String) in
            newTypes.contains(type) || (type == "integer" && newTypes.contains("number"))
        }
        if oldTypes.allSatisfy(covered) {
            record(path, "type_widened", .pass, "type \(Self.describe(old)) → \(Self.describe(new))")
        } else {
            record(path, "type_changed", .breaking, "type \(Self.describe(old)) → \(Self.describe(new))")
        }
    }

    mutating func compareProperties(_ old: JSONObject, _ new: JSONObject, path: String) {
        let oldProperties = Self.object(old["properties"] ?? .object(JSONObject()))
        let newProperties = Self.object(new["properties"] ?? .object(JSONObject()))
        let oldRequired = Self.stringSet(old["required"])
        let newRequired = Self.stringSet(new["required"])

        for member in oldProperties.members where newProperties[member.key] == nil {
            record(
                path + "/properties/" + EnvelopePath.escape(member.key), "field_removed", .breaking,
                "\"\(member.key)\" is no longer a property")
        }
        for member in newProperties.members {
            let propertyPath = path + "/properties/" + EnvelopePath.escape(member.key)
            if let oldProperty = oldProperties[member.key] {
                compare(oldProperty, member.value, path: propertyPath)
            } else if !newRequired.contains(CodePointKey(member.key)) {
                record(propertyPath, "optional_field_added", .pass, "\"\(member.key)\" added, not required")
            }
        }
        for name in Self.sortedNames(newRequired.subtracting(oldRequired)) {
            let detail =
                oldProperties[name] == nil
                ? "\"\(name)\" added as a required field" : "\"\(name)\" became required"
            record(path + "/properties/" + EnvelopePath.escape(name), "required_field_added", .breaking, detail)
        }
        for name in Self.sortedNames(oldRequired.subtracting(newRequired)) where newProperties[name] != nil {
            record(
                path + "/properties/" + EnvelopePath.escape(name), "field_made_optional", .warning,
                "\"\(name)\" is no longer required: producers may now leave it out, and consumers that rely on it break")
        }
    }

    mutating func compareAdditionalProperties(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        if old == nil && new == nil { return }
        let oldValue = old ?? .bool(true)
        let newValue = new ?? .bool(true)
        let childPath = path + "/additionalProperties"
        switch (oldValue, newValue) {
        case (.bool(false), .bool(false)):
            return
        case (_, .bool(false)):
            record(childPath, "additional_properties_forbidden", .breaking, "additionalProperties: false added")
        case (.bool(false), _):
            record(childPath, "additional_properties_allowed", .pass, "additionalProperties: false removed")
        default:
            compare(oldValue, newValue, path: childPath)
        }
    }

    mutating func compareDefinitions(_ old: JSONObject, _ new: JSONObject, path: String) {
        let oldDefinitions = Self.object(old["$defs"] ?? .object(JSONObject()))
        let newDefinitions = Self.object(new["$defs"] ?? .object(JSONObject()))
        // Added or removed definitions change nothing by themselves; the `$ref`s that use
        // them are compared where they appear.
        for member in newDefinitions.members {
            guard let oldDefinition = oldDefinitions[member.key] else { continue }
            compare(oldDefinition, member.value, path: path + "/$defs/" + EnvelopePath.escape(member.key))
        }
    }

    mutating func compareEnum(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        switch (old, new) {
        case (nil, nil):
            return
        case (nil, .some(let new)):
            record(path, "enum_added", .breaking, "values limited to \(new.compactText)")
        case (.some, nil):
            record(path, "enum_removed", .pass, "values no longer limited to a list")
        case (.some(let old), .some(let new)):
            let oldValues = Self.array(old)
            let newValues = Self.array(new)
            let removed = oldValues.filter { !newValues.contains($0) }
            let added = newValues.filter { !oldValues.contains($0) }
            if !removed.isEmpty {
                record(path, "enum_value_removed", .breaking, "removed \(Self.list(removed))")
            }
            if !added.isEmpty {
                record(path, "enum_value_added", .warning, "added \(Self.list(added)); consumers may not handle it")
            }
        }
    }

    mutating func compareConst(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        switch (old, new) {
        case (nil, nil):
            return
        case (nil, .some(let new)):
            record(path, "const_added", .breaking, "value fixed to \(new.compactText)")
        case (.some(let old), nil):
            record(path, "const_removed", .pass, "value no longer fixed to \(old.compactText)")
        case (.some(let old), .some(let new)):
            if old != new { record(path, "const_changed", .breaking, "\(old.compactText) → \(new.compactText)") }
        }
    }

    mutating func comparePattern(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        switch (old, new) {
        case (nil, nil):
            return
        case (nil, .some(let new)):
            record(path, "pattern_added", .breaking, "pattern \(new.compactText) added")
        case (.some(let old), nil):
            record(path, "pattern_removed", .pass, "pattern \(old.compactText) removed")
        case (.some(let old), .some(let new)):
            if old != new {
                record(path, "pattern_changed", .breaking, "pattern \(old.compactText) → \(new.compactText)")
            }
        }
    }

    mutating func compareBound(
        _ keyword: String, _ old: JSONValue?, _ new: JSONValue?, path: String, narrowsWhenLower: Bool
    ) {
        let name = Self.snakeCase(keyword)
        switch (Self.number(old), Self.number(new)) {
        case (nil, nil):
            return
        case (nil, .some(let new)):
            record(path, "\(name)_added", .breaking, "\(keyword) \(Self.format(new)) added")
        case (.some(let old), nil):
            record(path, "\(name)_removed", .pass, "\(keyword) \(Self.format(old)) removed")
        case (.some(let old), .some(let new)):
            guard old != new else { return }
            let lowered = new < old
            let rule = "\(name)_\(lowered ? "lowered" : "raised")"
            let verdict: CompatibilityVerdict = lowered == narrowsWhenLower ? .breaking : .pass
            record(path, rule, verdict, "\(keyword) \(Self.format(old)) → \(Self.format(new))")
        }
    }

    mutating func compareUniqueItems(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        let oldUnique = old == .bool(true)
        let newUnique = new == .bool(true)
        if !oldUnique && newUnique {
            record(path, "unique_items_added", .breaking, "uniqueItems: true added")
        } else if oldUnique && !newUnique {
            record(path, "unique_items_removed", .pass, "uniqueItems: true removed")
        }
    }

    mutating func compareMultipleOf(_ old: JSONValue?, _ new: JSONValue?, path: String) {
        guard old != new else { return }
        if let new {
            record(path, "multiple_of_changed", .breaking, "multipleOf \(old?.compactText ?? "none") → \(new.compactText)")
        } else if let old {
            record(path, "multiple_of_removed", .pass, "multipleOf \(old.compactText) removed")
        }
    }

    mutating func compareOtherKeywords(_ old: JSONObject, _ new: JSONObject, path: String) {
        var keywords: [String] = []
        for member in old.members + new.members
        where !Self.handledKeywords.contains(member.key) && !Self.annotationKeywords.contains(member.key)
            && !keywords.contains(member.key)
        {
            keywords.append(member.key)
        }
        for keyword in keywords where old[keyword] != new[keyword] {
            record(
                path + "/" + EnvelopePath.escape(keyword), "keyword_changed", .breaking,
                "\(keyword) changed; the checker does not reason about \(keyword), so any change is breaking")
        }
    }

    // MARK: - Reading schema documents

    static func object(_ value: JSONValue?) -> JSONObject {
        if case .object(let object) = value { return object }
        return JSONObject()
    }

    static func string(_ value: JSONValue?) -> String? {
        if case .string(let string) = value { return string }
        return nil
    }

    static func array(_ value: JSONValue) -> [JSONValue] {
        if case .array(let elements) = value { return elements }
        return [value]
    }

    /// The strings of an array such as `required`, as names: by code point, so two
    /// canonically equivalent names stay two.
    static func stringSet(_ value: JSONValue?) -> Set<CodePointKey> {
        guard case .array(let elements) = value else { return [] }
        return Set(elements.compactMap { string($0).map(CodePointKey.init) })
    }

    /// Names in a stable order: by UTF-8 bytes (code point order), as `String <` would not
    /// tell equivalent names apart.
    static func sortedNames(_ names: Set<CodePointKey>) -> [String] {
        names.map(\.text).sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    static func number(_ value: JSONValue?) -> Double? {
        if case .number(let number) = value { return number.doubleValue }
        return nil
    }

    /// The allowed types, or `nil` when any type is allowed.
    static func types(_ value: JSONValue?) -> Set<String>? {
        switch value {
        case .string(let type): [type]
        case .array(let types): Set(types.compactMap { string($0) })
        default: nil
        }
    }

    /// Resolves a `$ref` that is a JSON pointer within the document (`#`, `#/$defs/money`).
    static func resolve(_ reference: String, in root: JSONValue) -> JSONValue? {
        guard reference.hasPrefix("#") else { return nil }
        // The same resolution the validator's compiler uses, so both read a `$ref` alike.
        let pointer = String(reference.dropFirst()).removingPercentEncodingForPointer()
        guard pointer.isEmpty || pointer.hasPrefix("/") else { return nil }
        return root.resolve(pointer: pointer)
    }

    static func describe(_ value: JSONValue?) -> String { value?.compactText ?? "any" }

    static func list(_ values: [JSONValue]) -> String { values.map(\.compactText).joined(separator: ", ") }

    static func format(_ number: Double) -> String {
        number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
    }

    /// `maxLength` → `max_length`.
    static func snakeCase(_ keyword: String) -> String {
        var result = ""
        for character in keyword {
            if character.isUppercase {
                result += "_" + character.lowercased()
            } else {
                result.append(character)
            }
        }
        return result
    }
}

extension JSONValue {
    /// Compact JSON text for messages; long values are cut.
    fileprivate var compactText: String {
        let text = serialized()
        return text.count > 80 ? String(text.prefix(77)) + "..." : text
    }
}

