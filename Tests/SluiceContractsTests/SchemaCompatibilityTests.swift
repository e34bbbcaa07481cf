import SluiceContracts
import SluiceTestFixtures
import Testing

/// One test per compatibility rule, in both directions where the reverse has its own verdict.
@Suite("Schema compatibility")
struct SchemaCompatibilityTests {
    /// The changes from `old` to `new` (schema documents as JSON text).
    func changes(_ old: String, _ new: String) throws -> [SchemaChange] {
        SchemaCompatibility.compare(try JSONParser.parse(old), try JSONParser.parse(new))
    }

    /// The single change from `old` to `new`, as (path, rule, verdict).
    func single(_ old: String, _ new: String) throws -> (String, String, CompatibilityVerdict) {
        let found = try changes(old, new)
        #expect(found.count == 1, "\(found)")
        let change = try #require(found.first)
        return (change.path, change.rule, change.verdict)
    }

    static let base = #"{"type":"object","required":["id"],"properties":{"id":{"type":"string"}}}"#

    @Test("identical schemas have no changes; annotations are ignored")
    func identical() throws {
        #expect(try changes(Self.base, Self.base).isEmpty)
        let annotated = #"{"type":"object","title":"t","description":"d","required":["id"],"properties":{"id":{"type":"string","format":"uuid","examples":["x"]}}}"#
        #expect(try changes(Self.base, annotated).isEmpty)
    }

    @Test("a required field added is BREAKING; removing it is a PASS the other way round")
    func requiredFieldAdded() throws {
        let withAmount = #"{"type":"object","required":["id","amount"],"properties":{"id":{"type":"string"},"amount":{"type":"integer"}}}"#
        let added = try single(Self.base, withAmount)
        #expect(added == ("/properties/amount", "required_field_added", .breaking))
        let removed = try single(withAmount, Self.base)
        #expect(removed == ("/properties/amount", "field_removed", .breaking))
    }

    @Test("an optional field added is PASS; removing it is BREAKING")
    func optionalFieldAdded() throws {
        let withNote = #"{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"note":{"type":"string"}}}"#
        #expect(try single(Self.base, withNote) == ("/properties/note", "optional_field_added", .pass))
        #expect(try single(withNote, Self.base) == ("/properties/note", "field_removed", .breaking))
    }

    @Test("an existing field becoming required is BREAKING; becoming optional is a WARNING")
    func requiredness() throws {
        let optional = #"{"type":"object","properties":{"id":{"type":"string"}}}"#
        #expect(try single(optional, Self.base) == ("/properties/id", "required_field_added", .breaking))
        #expect(try single(Self.base, optional) == ("/properties/id", "field_made_optional", .warning), "it widens what producers may send, as an added enum value does")
    }

    @Test("a type changed is BREAKING; a type widened is PASS")
    func typeChanged() throws {
        let schema = { (type: String) in #"{"properties":{"n":{"type":\#(type)}}}"# }
        #expect(try single(schema("\"string\""), schema("\"integer\"")) == ("/properties/n", "type_changed", .breaking))
        #expect(try single(schema("\"integer\""), schema("\"number\"")) == ("/properties/n", "type_widened", .pass))
        #expect(try single(schema("\"number\""), schema("\"integer\"")) == ("/properties/n", "type_changed", .breaking))
        #expect(try single(schema("\"string\""), schema(#"["string","null"]"#)) == ("/properties/n", "type_widened", .pass))
        #expect(try single(schema(#"["string","null"]"#), schema("\"string\"")) == ("/properties/n", "type_changed", .breaking))
        #expect(try single(#"{"properties":{"n":{}}}"#, schema("\"string\"")) == ("/properties/n", "type_changed", .breaking))
        #expect(try single(schema("\"string\""), #"{"properties":{"n":{}}}"#) == ("/properties/n", "type_widened", .pass))
    }

    @Test(
        "upper bounds: lowered or added is BREAKING, raised or removed is PASS",
        arguments: ["maxLength", "maximum", "maxItems", "exclusiveMaximum", "maxProperties"])
    func upperBounds(_ keyword: String) throws {
        let name = snake(keyword)
        let with = { (value: Int) in #"{"properties":{"f":{"\#(keyword)":\#(value)}}}"# }
        let without = #"{"properties":{"f":{}}}"#
        #expect(try single(with(10), with(5)) == ("/properties/f", "\(name)_lowered", .breaking))
        #expect(try single(with(5), with(10)) == ("/properties/f", "\(name)_raised", .pass))
        #expect(try single(without, with(5)) == ("/properties/f", "\(name)_added", .breaking))
        #expect(try single(with(5), without) == ("/properties/f", "\(name)_removed", .pass))
    }

    @Test(
        "lower bounds: raised or added is BREAKING, lowered or removed is PASS",
        arguments: ["minLength", "minimum", "minItems", "exclusiveMinimum", "minProperties"])
    func lowerBounds(_ keyword: String) throws {
        let name = snake(keyword)
        let with = { (value: Int) in #"{"properties":{"f":{"\#(keyword)":\#(value)}}}"# }
        let without = #"{"properties":{"f":{}}}"#
        #expect(try single(with(1), with(3)) == ("/properties/f", "\(name)_raised", .breaking))
        #expect(try single(with(3), with(1)) == ("/properties/f", "\(name)_lowered", .pass))
        #expect(try single(without, with(1)) == ("/properties/f", "\(name)_added", .breaking))
        #expect(try single(with(1), without) == ("/properties/f", "\(name)_removed", .pass))
    }

    @Test("a pattern added or changed is BREAKING; removed is PASS")
    func pattern() throws {
        let none = #"{"type":"string"}"#
        let digits = #"{"type":"string","pattern":"^[0-9]+$"}"#
        let letters = #"{"type":"string","pattern":"^[a-z]+$"}"#
        #expect(try single(none, digits) == ("", "pattern_added", .breaking))
        #expect(try single(digits, letters) == ("", "pattern_changed", .breaking))
        #expect(try single(digits, none) == ("", "pattern_removed", .pass))
    }

    @Test("an enum value removed is BREAKING; added is a WARNING")
    func enumValues() throws {
        let two = #"{"properties":{"c":{"enum":["EUR","USD"]}}}"#
        let three = #"{"properties":{"c":{"enum":["EUR","USD","GBP"]}}}"#
        #expect(try single(three, two) == ("/properties/c", "enum_value_removed", .breaking))
        #expect(try single(two, three) == ("/properties/c", "enum_value_added", .warning))
        let swapped = try changes(two, #"{"properties":{"c":{"enum":["EUR","GBP"]}}}"#)
        #expect(swapped.map(\.rule) == ["enum_value_removed", "enum_value_added"])
    }

    @Test("an enum added is BREAKING; removed is PASS")
    func enumAddedRemoved() throws {
        let free = #"{"properties":{"c":{"type":"string"}}}"#
        let listed = #"{"properties":{"c":{"type":"string","enum":["EUR"]}}}"#
        #expect(try single(free, listed) == ("/properties/c", "enum_added", .breaking))
        #expect(try single(listed, free) == ("/properties/c", "enum_removed", .pass))
    }

    @Test("additionalProperties: false added is BREAKING; removed is PASS")
    func additionalProperties() throws {
        let open = #"{"type":"object"}"#
        let closed = #"{"type":"object","additionalProperties":false}"#
        #expect(try single(open, closed) == ("/additionalProperties", "additional_properties_forbidden", .breaking))
        #expect(try single(closed, open) == ("/additionalProperties", "additional_properties_allowed", .pass))
        #expect(try changes(#"{"additionalProperties":true}"#, "{}").isEmpty)
    }

    @Test("a const added or changed is BREAKING; removed is PASS")
    func const() throws {
        let free = #"{"properties":{"k":{"type":"string"}}}"#
        let fixed = #"{"properties":{"k":{"type":"string","const":"a"}}}"#
        let other = #"{"properties":{"k":{"type":"string","const":"b"}}}"#
        #expect(try single(free, fixed) == ("/properties/k", "const_added", .breaking))
        #expect(try single(fixed, other) == ("/properties/k", "const_changed", .breaking))
        #expect(try single(fixed, free) == ("/properties/k", "const_removed", .pass))
    }

    @Test("uniqueItems and multipleOf narrow when added and widen when removed")
    func uniqueItemsAndMultipleOf() throws {
        #expect(try single(#"{"type":"array"}"#, #"{"type":"array","uniqueItems":true}"#) == ("", "unique_items_added", .breaking))
        #expect(try single(#"{"type":"array","uniqueItems":true}"#, #"{"type":"array"}"#) == ("", "unique_items_removed", .pass))
        #expect(try single(#"{"multipleOf":2}"#, #"{"multipleOf":3}"#) == ("", "multiple_of_changed", .breaking))
        #expect(try single(#"{"multipleOf":2}"#, #"{}"#) == ("", "multiple_of_removed", .pass))
    }

    @Test("changes inside nested properties and items are found with their paths")
    func nested() throws {
        let old = #"{"properties":{"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","maxLength":40}}}}}}"#
        let new = #"{"properties":{"lines":{"type":"array","items":{"type":"object","properties":{"sku":{"type":"string","maxLength":20}}}}}}"#
        #expect(try single(old, new) == ("/properties/lines/items/properties/sku", "max_length_lowered", .breaking))
    }

    @Test("changes inside $defs are found; $ref targets that move are compared")
    func definitionsAndReferences() throws {
        let old = ##"{"properties":{"c":{"$ref":"#/$defs/currency"}},"$defs":{"currency":{"type":"string","pattern":"^[A-Z]{3}$"}}}"##
        let narrowedDefinition = ##"{"properties":{"c":{"$ref":"#/$defs/currency"}},"$defs":{"currency":{"type":"string","pattern":"^(EUR|USD)$"}}}"##
        #expect(try single(old, narrowedDefinition) == ("/$defs/currency", "pattern_changed", .breaking))

        let movedTarget = ##"{"properties":{"c":{"$ref":"#/$defs/money_currency"}},"$defs":{"money_currency":{"type":"string","pattern":"^[A-Z]{3}$","maxLength":3}}}"##
        #expect(try single(old, movedTarget) == ("/properties/c", "max_length_added", .breaking))

        let inlined = #"{"properties":{"c":{"type":"string","pattern":"^[A-Z]{3}$"}}}"#
        #expect(try changes(old, inlined).isEmpty)
    }

    @Test("recursive $ref definitions terminate")
    func recursiveReferences() throws {
        let old = ##"{"$ref":"#/$defs/node","$defs":{"node":{"type":"object","properties":{"child":{"$ref":"#/$defs/node"}}}}}"##
        let new = ##"{"$ref":"#/$defs/tree","$defs":{"tree":{"type":"object","properties":{"child":{"$ref":"#/$defs/tree"}}}}}"##
        #expect(try changes(old, new).isEmpty)
    }

    @Test("a change to a keyword the checker does not reason about is BREAKING")
    func unanalyzedKeyword() throws {
        let old = #"{"anyOf":[{"type":"string"},{"type":"integer"}]}"#
        let new = #"{"anyOf":[{"type":"string"},{"type":"number"}]}"#
        #expect(try single(old, new) == ("/anyOf", "keyword_changed", .breaking))
    }

    @Test("the repository's EventSchemas pass the gate")
    func repositorySchemasPass() throws {
        let report = SchemaCompatibility.check(try EnvelopeTestFixtures.registry())
        #expect(!report.hasBreakingChanges, "\(report.changes)")
        #expect(report.comparisons.contains { $0.eventType == "billing.payment_authorized" && $0.toVersion == 2 })
        let billing = report.changes.filter { $0.eventType == "billing.payment_authorized" }
        #expect(billing.allSatisfy { $0.fromVersion == 1 && $0.toVersion == 2 })
        #expect(billing.contains { $0.rule == "optional_field_added" })
    }

    @Test("the report's verdict is the worst change")
    func reportVerdict() {
        var report = SchemaCompatibilityReport()
        #expect(report.verdict == .pass)
        report.changes.append(
            SchemaChange(eventType: "a.b_ed", fromVersion: 1, toVersion: 2, path: "", rule: "enum_value_added", verdict: .warning, detail: ""))
        #expect(report.verdict == .warning)
        #expect(!report.hasBreakingChanges)
    }

    private func snake(_ keyword: String) -> String {
        keyword.reduce(into: "") { result, character in
            if character.isUppercase { result += "_" + character.lowercased() } else { result.append(character) }
        }
    }
}
