import SluiceContracts
import SluiceTestFixtures
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

    @Test("Number literals: exponents, signs, big and small values")
    func numberLiterals() throws {
        func number(_ text: String) throws -> JSONNumber {
            guard case .number(let number) = try JSONParser.parse(text) else { throw JSONParseError(kind: .syntax, offset: 0, message: text) }
            return number
        }
        #expect(try number("-9223372036854775808").int64Value == Int64.min)
        #expect(try number("9223372036854775808").int64Value == nil)
        #expect(try number("9223372036854775808").doubleValue == 9_223_372_036_854_775_808.0)
        #expect(try number("1E3").int64Value == 1_000)
        #expect(try number("1e+3") == number("1000.000"))
        #expect(try number("12.5e-1").doubleValue == 1.25)
        #expect(try number("0.1").doubleValue == 0.1)
        #expect(try number("123456789012345678901234567890").doubleValue == 1.2345678901234568e29)
        #expect(try number("1.5").int64Value == nil)
        #expect(try number("-0").doubleValue.sign == .minus)
        #expect(try JSONParser.parse("-0").serialized() == "-0")
        #expect(try JSONParser.parse("[1.50,100,0.000001,1e21,1e-7,-2.5E+2]").serialized() == "[1.5,100,0.000001,1e21,1e-7,-250]")
        #expect(try number("2.5").isMultiple(of: number("0.5")))
        #expect(try !number("1e308").isMultiple(of: number("0.123456789")))
        #expect(try number("1e-5") < number("0.0001"))
    }

    @Test("Escapes decode, surrogate pairs combine, and lone surrogates are refused")
    func escapes() throws {
        #expect(try JSONParser.parse(#""\"\\\/\b\f\n\r\t\u0041\u00e9\u20AC""#) == .string("\"\\/\u{08}\u{0C}\n\r\tAé€"))
        #expect(try JSONParser.parse(#""\uD834\uDD1E""#) == .string("𝄞"))
        for bad in [#""\uD834""#, #""\uD834\u0041""#, #""\uDD1E\uD834""#, #""\u12G4""#, #""\u12""#] {
            #expect(throws: JSONParseError.self, "\(bad)") { try JSONParser.parse(bad) }
        }
    }

    @Test("Malformed UTF-8 is refused: overlongs, surrogates, truncation, stray continuation bytes", arguments: [
        [0xC0, 0xAF], [0xE0, 0x80, 0xAF], [0xED, 0xA0, 0x80], [0xF4, 0x90, 0x80, 0x80], [0xE2, 0x82], [0x80], [0xFF],
    ] as [[UInt8]])
    func malformedUTF8(sequence: [UInt8]) {
        let error = #expect(throws: JSONParseError.self) { try JSONParser.parse([0x22] + sequence + [0x22]) }
        #expect(error?.kind == .invalidUTF8)
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse(sequence) })?.kind == .syntax, "outside a string")
    }

    @Test("Depth is bounded exactly at the limit, and a large object with repeated names stays linear")
    func depthAndLargeObjects() throws {
        let limits = JSONParseLimits(maxBytes: 1 << 20, maxDepth: 64, maxStringLength: 1 << 10)
        let atLimit = String(repeating: "[", count: 64) + String(repeating: "]", count: 64)
        #expect(throws: Never.self) { try JSONParser.parse(atLimit, limits: limits) }
        let over = "{\"a\":" + atLimit + "}"
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse(over, limits: limits) })?.kind == .tooDeep)
        let members = (0..<20_000).map { "\"k\($0 % 1_000)\":\($0)" }.joined(separator: ",")
        guard case .object(let object) = try JSONParser.parse("{" + members + "}") else { Issue.record(); return }
        #expect(object.count == 1_000)
        #expect(object["k5"] == .number(JSONNumber(Int64(19_005))))
        let giant = "\"" + String(repeating: "x", count: 300_000) + "\""
        #expect((#expect(throws: JSONParseError.self) { try JSONParser.parse(giant) })?.kind == .stringTooLong)
    }

    @Test("Whitespace is only space, tab, CR and LF; a byte order mark is refused")
    func whitespace() {
        #expect(throws: Never.self) { try JSONParser.parse(" \t\r\n[ 1 , 2 ]\n") }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("\u{0C}[1]") }
        #expect(throws: JSONParseError.self) { try JSONParser.parse([0xEF, 0xBB, 0xBF, 0x31]) }
        #expect(throws: JSONParseError.self) { try JSONParser.parse("[1]\u{00A0}") }
    }
}
