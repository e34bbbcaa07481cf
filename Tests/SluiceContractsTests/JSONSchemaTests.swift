import SluiceContracts
import SluiceTestFixtures
import Testing

@Suite("JSON Schema violations name the path, the keyword and what was expected")
struct JSONSchemaTests {
    static let schema = #"""
        {"type":"object","required":["id","amount"],"additionalProperties":false,
         "properties":{"id":{"type":"string","pattern":"^pay_"},"amount":{"type":"integer","minimum":0},
                       "tags":{"type":"array","items":{"enum":["a","b"]}}}}
        """#

    @Test("Each violation has an instance path, a schema path, a keyword and a message")
    func violations() throws {
        let schema = try JSONSchema(try JSONParser.parse(Self.schema), source: "payment.schema.json")
        let instance = try JSONParser.parse(#"{"id":"x_1","amount":-1,"tags":["a","z"],"extra":1}"#)
        let violations = schema.validate(instance)
        #expect(!schema.isValid(instance))
        let byKeyword = Dictionary(grouping: violations, by: \.keyword)
        #expect(byKeyword["pattern"]?.first?.instancePath == "/id")
        #expect(byKeyword["minimum"]?.first?.instancePath == "/amount")
        #expect(byKeyword["minimum"]?.first?.message == "expected at least 0, got -1")
        #expect(byKeyword["enum"]?.first?.instancePath == "/tags/1")
        #expect(byKeyword["additionalProperties"]?.first?.instancePath == "/extra")
        #expect(byKeyword["pattern"]?.first?.schemaPath == "/properties/id/pattern")
        let missing = schema.validate(try JSONParser.parse(#"{"id":3}"#))
        #expect(missing.contains { $0.keyword == "type" && $0.message == "expected string, got integer" })
        #expect(missing.contains { $0.keyword == "required" && $0.message.contains("amount") })
    }

    @Test("Unsupported keywords and malformed schemas are refused at load, naming the keyword and the file")
    func refusals() {
        let unsupported = #expect(throws: SluiceError.self) {
            try JSONSchema(try JSONParser.parse(#"{"properties":{"a":{"unevaluatedProperties":false}}}"#), source: "x/v1.schema.json")
        }
        #expect(unsupported?.code == .schemaKeywordUnsupported)
        #expect(unsupported?.path == "/properties/a/unevaluatedProperties")
        #expect(unsupported?.message.contains("x/v1.schema.json") == true)
        #expect(unsupported?.message.contains("unevaluatedProperties") == true)
        for bad in [#"{"type":5}"#, #"{"minimum":"x"}"#, ##"{"$ref":"#/$defs/missing"}"##, #"{"pattern":"("}"#, #"{"multipleOf":0}"#, "3"] {
            let error = #expect(throws: SluiceError.self) { try JSONSchema(try JSONParser.parse(bad), source: "bad") }
            #expect(error?.code == .schemaInvalid, "\(bad)")
        }
        #expect((#expect(throws: SluiceError.self) { try JSONSchema(try JSONParser.parse(##"{"$ref":"other.json#/a"}"##), source: "s") })?.code == .schemaKeywordUnsupported)
    }

    @Test("Schemas with keywords outside the contract are refused, one keyword at a time", arguments: [
        "unevaluatedProperties", "unevaluatedItems", "dependentSchemas", "propertyNames", "$dynamicRef",
        "$dynamicAnchor", "$anchor", "$vocabulary", "$recursiveRef", "definitions", "dependencies", "x-custom",
    ])
    func unsupportedKeyword(keyword: String) {
        let document = JSONValue.object(JSONObject([("type", .string("object")), (keyword, .bool(true))]))
        let error = #expect(throws: SluiceError.self) { try JSONSchema(document, source: "a/v2.schema.json") }
        #expect(error?.code == .schemaKeywordUnsupported)
        #expect(error?.path == "/" + keyword)
        #expect(error?.message.contains(keyword) == true)
        #expect(error?.message.contains("a/v2.schema.json") == true)
    }

    @Test("A $ref cycle that never descends into the instance is refused; one that does is fine")
    func refCycles() throws {
        for looping in [##"{"$ref":"#"}"##, ##"{"$defs":{"a":{"$ref":"#/$defs/b"},"b":{"allOf":[{"$ref":"#/$defs/a"}]}},"$ref":"#/$defs/a"}"##] {
            let error = #expect(throws: SluiceError.self) { try JSONSchema(try JSONParser.parse(looping), source: "loop") }
            #expect(error?.code == .schemaInvalid, "\(looping)")
        }
        let tree = try JSONSchema(
            try JSONParser.parse(##"{"type":"object","properties":{"value":{"type":"integer"},"children":{"type":"array","items":{"$ref":"#"}}}}"##),
            source: "tree")
        #expect(tree.isValid(try JSONParser.parse(#"{"value":1,"children":[{"value":2,"children":[]}]}"#)))
        let violations = tree.validate(try JSONParser.parse(#"{"value":1,"children":[{"value":"x"}]}"#))
        #expect(violations.map(\.instancePath) == ["/children/0/value"])
        #expect(violations.first?.schemaPath == "/properties/value/type")
    }

    @Test("$ref to the document's own $id, absolute or relative, stays inside the document; other documents are refused")
    func refToOwnID() throws {
        let schema = try JSONSchema(
            try JSONParser.parse(##"{"$id":"https://example.com/schemas/payment.json","$defs":{"id":{"type":"string"}},"properties":{"a":{"$ref":"payment.json#/$defs/id"},"b":{"$ref":"https://example.com/schemas/payment.json#/$defs/id"}}}"##),
            source: "own")
        #expect(!schema.isValid(try JSONParser.parse(#"{"a":1}"#)))
        #expect(!schema.isValid(try JSONParser.parse(#"{"b":1}"#)))
        #expect(schema.isValid(try JSONParser.parse(#"{"a":"x","b":"y"}"#)))
        let remote = #expect(throws: SluiceError.self) {
            try JSONSchema(try JSONParser.parse(##"{"$id":"https://example.com/a.json","$ref":"b.json#/x"}"##), source: "remote")
        }
        #expect(remote?.code == .schemaKeywordUnsupported)
    }

    @Test("Instance paths escape ~ and / as RFC 6901 says")
    func pointerEscaping() throws {
        let schema = try JSONSchema(try JSONParser.parse(#"{"additionalProperties":{"type":"string"}}"#), source: "s")
        let violations = schema.validate(try JSONParser.parse(#"{"a/b~c":1}"#))
        #expect(violations.map(\.instancePath) == ["/a~1b~0c"])
        #expect(violations.first?.schemaPath == "/additionalProperties/type")
    }

    @Test("Combinators report one violation naming the keyword")
    func combinators() throws {
        let schema = try JSONSchema(
            try JSONParser.parse(#"{"oneOf":[{"type":"integer"},{"minimum":0}],"not":{"const":7},"anyOf":[{"type":"string"},{"type":"number"}]}"#),
            source: "s")
        #expect(schema.validate(.number(JSONNumber(Int64(3)))).map(\.keyword) == ["oneOf"])
        #expect(schema.validate(.number(JSONNumber(Int64(7)))).map(\.keyword).sorted() == ["not", "oneOf"])
        #expect(schema.validate(.null).map(\.keyword) == ["anyOf"], "minimum ignores null, so one oneOf branch matches")
        #expect(schema.validate(.number(JSONNumber(-1.5))).map(\.keyword) == ["oneOf"])
        #expect(schema.validate(.number(JSONNumber(0.5))).isEmpty)
    }

    @Test("Lengths count Unicode code points, and patterns match Unicode text")
    func unicode() throws {
        let schema = try JSONSchema(try JSONParser.parse(#"{"minLength":2,"maxLength":2,"pattern":"^\\p{L}+$"}"#), source: "s")
        #expect(schema.isValid(.string("é😀") ) == false)  // two code points, but 😀 is no letter
        #expect(schema.isValid(.string("éü")))
        #expect(schema.validate(.string("💩💩💩")).map(\.keyword).sorted() == ["maxLength", "pattern"])
        let ascii = try JSONSchema(try JSONParser.parse(#"{"pattern":"^[a-z]+_[0-9]{3}$"}"#), source: "s")
        #expect(ascii.isValid(.string("pay_123")))
        #expect(!ascii.isValid(.string("pay_1234")))
        #expect(!ascii.isValid(.string("päy_123")))
        let dot = try JSONSchema(try JSONParser.parse(#"{"pattern":"^.$"}"#), source: "s")
        #expect(dot.isValid(.string("😀")), "one code point, whatever its UTF-16 length")
        #expect(ascii.isValid(.number(JSONNumber(Int64(5)))), "pattern ignores non-strings")
    }

    @Test("multipleOf is exact for decimal literals")
    func multipleOf() throws {
        let schema = try JSONSchema(try JSONParser.parse(#"{"multipleOf":0.01}"#), source: "s")
        #expect(schema.isValid(try JSONParser.parse("19.99")))
        #expect(schema.isValid(try JSONParser.parse("0.07")))
        #expect(!schema.isValid(try JSONParser.parse("0.075")))
        #expect(schema.validate(try JSONParser.parse("0.075")).first?.message == "expected a multiple of 0.01, got 0.075")
    }

    @Test("Boolean schemas and format as annotation")
    func booleanAndFormat() throws {
        #expect(try JSONSchema(.bool(true), source: "t").isValid(.null))
        #expect(try JSONSchema(.bool(false), source: "f").validate(.null).map(\.keyword) == ["false"])
        let format = try JSONSchema(try JSONParser.parse(#"{"format":"date-time"}"#), source: "s")
        #expect(format.isValid(.string("not a date")))
    }
}
