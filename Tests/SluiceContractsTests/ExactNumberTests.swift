import SluiceContracts
import Testing

/// Numeric keywords decide on the literal's exact decimal value, however many digits it has:
/// `Double` (53 bits) cannot tell 2^70 from 2^70 + 1, and a validator that rounds lets the
/// wrong payload through.
@Suite("Numeric keywords are exact on numbers of any size")
struct ExactNumberTests {
    static let twoTo70 = "1180591620717411303424"
    static let twoTo70PlusOne = "1180591620717411303425"
    static let twoTo64 = "18446744073709551616"
    static let twoTo64PlusOne = "18446744073709551617"

    func isValid(_ schemaText: String, _ instanceText: String) throws -> Bool {
        try JSONSchema(try JSONParser.parse(schemaText), source: "numbers").isValid(try JSONParser.parse(instanceText))
    }

    func number(_ text: String) throws -> JSONNumber {
        guard case .number(let number) = try JSONParser.parse(text) else {
            throw SluiceError(code: "NOT_A_NUMBER", message: text)
        }
        return number
    }

    @Test("const and enum tell 2^70 from 2^70 + 1")
    func constAndEnum() throws {
        #expect(try !isValid(#"{"const":\#(Self.twoTo70)}"#, Self.twoTo70PlusOne))
        #expect(try isValid(#"{"const":\#(Self.twoTo70)}"#, Self.twoTo70))
        #expect(try isValid(#"{"const":\#(Self.twoTo70)}"#, "1.180591620717411303424e21"))
        #expect(try !isValid(#"{"enum":[\#(Self.twoTo70)]}"#, Self.twoTo70PlusOne))
        #expect(try !isValid(#"{"const":[\#(Self.twoTo70)]}"#, "[\(Self.twoTo70PlusOne)]"))
    }

    @Test("multipleOf is exact on big integers")
    func multipleOf() throws {
        #expect(try !isValid(#"{"multipleOf":2}"#, Self.twoTo70PlusOne))
        #expect(try isValid(#"{"multipleOf":2}"#, Self.twoTo70))
        #expect(try isValid(#"{"multipleOf":\#(Self.twoTo64)}"#, Self.twoTo70))
        #expect(try !isValid(#"{"multipleOf":\#(Self.twoTo64)}"#, Self.twoTo70PlusOne))
        #expect(try isValid(#"{"multipleOf":3}"#, "1180591620717411303423"))  // 2^70 − 1 = 3 · 393530540239137101141
        #expect(try !isValid(#"{"multipleOf":3}"#, Self.twoTo70))
        #expect(try isValid(#"{"multipleOf":0.5}"#, "1180591620717411303424.5"))
        #expect(try !isValid(#"{"multipleOf":0.5}"#, "1180591620717411303424.25"))
        #expect(try isValid(#"{"multipleOf":1e-30}"#, "0.000000000000000000000000000123"))
        #expect(try !isValid(#"{"multipleOf":1e-30}"#, "1.0000000000000000000000000000001"))
        // A divisor whose Double underflows to 0 is still positive, and still exact.
        #expect(try isValid(#"{"multipleOf":1e-400}"#, "1e-399"))
        #expect(try !isValid(#"{"multipleOf":2e-400}"#, "1e-400"))
    }

    @Test("minimum, maximum and the exclusive bounds compare big numbers exactly")
    func bounds() throws {
        #expect(try isValid(#"{"exclusiveMinimum":\#(Self.twoTo64)}"#, Self.twoTo64PlusOne))
        #expect(try !isValid(#"{"exclusiveMinimum":\#(Self.twoTo64)}"#, Self.twoTo64))
        #expect(try !isValid(#"{"maximum":\#(Self.twoTo70)}"#, Self.twoTo70PlusOne))
        #expect(try isValid(#"{"maximum":\#(Self.twoTo70)}"#, Self.twoTo70))
        #expect(try !isValid(#"{"minimum":\#(Self.twoTo70PlusOne)}"#, Self.twoTo70))
        #expect(try !isValid(#"{"exclusiveMaximum":\#(Self.twoTo70)}"#, Self.twoTo70))
        #expect(try isValid(#"{"exclusiveMaximum":\#(Self.twoTo70)}"#, "1180591620717411303423.999999999999"))
        #expect(try !isValid(#"{"minimum":-\#(Self.twoTo70)}"#, "-\(Self.twoTo70PlusOne)"))
        #expect(try isValid(#"{"minimum":0.1}"#, "0.10000000000000000000000000001"))
        #expect(try !isValid(#"{"maximum":0.1}"#, "0.10000000000000000000000000001"))
    }

    @Test("uniqueItems tells big numbers apart and finds equal ones")
    func uniqueItems() throws {
        #expect(try isValid(#"{"uniqueItems":true}"#, "[\(Self.twoTo70), \(Self.twoTo70PlusOne)]"))
        #expect(try !isValid(#"{"uniqueItems":true}"#, "[\(Self.twoTo70), 1.180591620717411303424e21]"))
    }

    @Test("type integer is exact: a big literal with a tiny fraction is no integer")
    func integerType() throws {
        #expect(try isValid(#"{"type":"integer"}"#, Self.twoTo70))
        #expect(try isValid(#"{"type":"integer"}"#, "1180591620717411303424.0"))
        #expect(try !isValid(#"{"type":"integer"}"#, "1180591620717411303424.5"))
        #expect(try !isValid(#"{"type":"integer"}"#, "1.0000000000000000000000001"))
        #expect(try isValid(#"{"type":"integer"}"#, "1.00000000000000000000000e30"))
    }

    @Test("Decimals compare by value, not by their binary rounding")
    func decimals() throws {
        #expect(try isValid(#"{"multipleOf":0.1}"#, "0.3"))
        #expect(try isValid(#"{"const":1.0}"#, "1"))
        #expect(try isValid(#"{"const":1.0}"#, "1.00"))
        #expect(try isValid(#"{"const":100}"#, "1e2"))
        #expect(try isValid(#"{"const":1e2}"#, "100.000000000000000000000000"))
        #expect(try !isValid(#"{"const":0.3}"#, "0.30000000000000000000000000001"))
    }

    @Test("A big literal keeps its digits: int64Value is nil and serialization is exact")
    func representation() throws {
        let big = try number(Self.twoTo70PlusOne)
        #expect(big.int64Value == nil)
        // ECMAScript's layout (exponent form past 21 digits), with every digit kept.
        #expect(big.description == "1.180591620717411303425e21")
        #expect(try number(big.description) == big)
        #expect(try number("118059162071741130342").description == "118059162071741130342")
        #expect(try number("-1180591620717411303424.125").description == "-1180591620717411303424.125")
        #expect(try number("123456789012345678901234567890e-40").description == "1.2345678901234567890123456789e-11")
        #expect(try number(Self.twoTo70) < number(Self.twoTo70PlusOne))
        #expect(try number(Self.twoTo64) > number("18446744073709551615"))
        #expect(try number("18446744073709551615").int64Value == nil)
        #expect(try number("9223372036854775808").int64Value == nil)
        #expect(try number("-9223372036854775808").int64Value == Int64.min)
    }
}
