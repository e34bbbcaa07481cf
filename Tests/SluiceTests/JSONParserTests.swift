import Sluice
import Testing

@Suite("The JSON parser: strict RFC 8259, bounded against hostile input")
struct JSONParserTests {
    @Test("Valid documents parse to the values they spell")
    func valid() throws {
        let value = try JSONParser.parse(#" {"a":[1,-2.5e3,true,false,null,"x\n\u00e9\ud83d\ude00"],"b":{},"c":[]} "#)
        guard case .object(let object) = value, case .array(let array)? = object["a"] else { Issue.record("not an object"); return }
        #expect(array[0] == .number(JSONNumber(Int64(1))))
        #expect(array[1] == .number(JSONNumber(-2_500.0)))
        #expect(array[2] == .bool(true) && array[3] == .bool(false) && array[4] == .null)
        #expect(array[5] == .string("x\né😀"))
        #expect(object["b"] == .object(JSONObject()) && object["c"] == .array([]))
    }

    @Test("Numbers keep integers exact and decimals comparable by value")
    func numbers() throws {
        guard case .number(let big) = try JSONParser.parse("9223372036854775807") else { Issue.record(); return }
        #expect(big.int64Value == Int64.max)
        #expect(try JSONParser.parse("1.0") == JSONParser.parse("1"))
        #expect(try JSONParser.parse("10e-1") == JSONParser.parse("1"))
        #expect(try JSONParser.parse("-0") == JSONParser.parse("0"))
        guard case .number(let decimal) = try JSONParser.parse("0.0075"), case .number(let step) = try JSONParser.parse("0.0001") else { Issue.record(); return }
        #expect(decimal.isMultiple(of: step), "exact decimal arithmetic, where Double says 74.99999")
        guard case .number(let huge) = try JSONParser.parse("1e400") else { Issue.record(); return }
        #expect(huge.int64Value == nil)
    }

    @Test("A repeated member name keeps its first position and its last value")
    func duplicateNames() throws {
        guard case .object(let object) = try JSONParser.parse(#"{"a":1,"b":2,"a":3}"#) else { Issue.record(); return }
        #expect(object.members.map(\.key) == ["a", "b"])
        #expect(object["a"] == .number(JSONNumber(Int64(3))))
    }

    @Test("Malformed documents are refused with the offset where they went wrong", arguments: [
        ("[1,]", JSONParseError.Kind.syntax), ("{\"a\":1,}", .syntax), ("01", .syntax), ("1.", .syntax), ("-", .syntax),
        ("\"\u{01}\"", .syntax), ("\"\\ud800\"", .syntax), ("\"\\udc00\"", .syntax), ("\"\\x\"", .syntax), ("tru", .syntax),
        ("{\"a\" 1}", .syntax), ("[1] 2", .syntax), ("", .syntax), ("'a'", .syntax), ("NaN", .syntax),
    ])
    func malformed(text: String, kind: JSONParseError.Kind) {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse(text) }
        #expect(error?.kind == kind)
    }

    @Test("Invalid UTF-8 is refused")
    func invalidUTF8() {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22, 0xC3, 0x28, 0x22]) }
        #expect(error?.kind == .invalidUTF8)
    }

    @Test("Hostile input hits the limits, not the stack or the heap")
    func limits() {
        let bomb = [UInt8](repeating: UInt8(ascii: "["), count: 100_000)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse(bomb) })?.kind == .tooDeep)
        let limits = JSONParseLimits(maxBytes: 1_000, maxDepth: 8, maxStringLength: 10)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse([UInt8](repeating: 0x20, count: 1_001), limits: limits) })?.kind == .tooLarge)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse("\"01234567890\"", limits: limits) })?.kind == .stringTooLong)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse("\"0123456789\\n\"", limits: limits) })?.kind == .stringTooLong)
        #expect(throws: Never.self) { try JSONParser.parse("[[[[[[[[1]]]]]]]]", limits: limits) }
    }

    @Test("serialized() writes compact JSON that parses back to the same value")
    func roundTrip() throws {
        let text = #"{"s":"q\"\\\n\u0001é","n":[0,-12,0.5,1e-7],"o":{"x":null,"y":[true,false]}}"#
        let value = try JSONParser.parse(text)
        #expect(try JSONParser.parse(value.serialized()) == value)
    }
}

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
        #expect(byKeyword["minimum"]?.first?.message == "expected at least 0")
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
}
