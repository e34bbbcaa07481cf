import SluiceContracts
import Testing

/// `pattern` follows ECMA-262 (Annex B, no `u` flag) for what is a pattern, runs on one
/// linear-time engine, and refuses at load what that engine does not implement: no answer may
/// depend on a time limit.
@Suite("Patterns: ECMA-262 syntax, one linear-time engine, refusals at load")
struct PatternTests {
    func schema(_ pattern: String) throws -> JSONSchema {
        try JSONSchema(.object(JSONObject([("pattern", .string(pattern))])), source: "patterns/v1.schema.json")
    }

    func matches(_ pattern: String, _ text: String) throws -> Bool {
        try schema(pattern).isValid(.string(text))
    }

    func refusal(_ pattern: String) -> SluiceError? {
        #expect(throws: SluiceError.self, "\(pattern)") { try schema(pattern) }
    }

    @Test("The issue's catastrophic pattern gives the specification's answer, at once")
    func catastrophicUnicodePattern() throws {
        let pattern = #"^(?:(\p{L}+)+!|a*)$"#
        let text = String(repeating: "a", count: 20)
        #expect(try matches(pattern, text))
        #expect(try matches(pattern, "ab!"))
        #expect(try !matches(pattern, "ab"))
        let negated = try JSONSchema(try JSONParser.parse(#"{"not":{"pattern":"^(?:(\\p{L}+)+!|a*)$"}}"#), source: "s")
        #expect(!negated.isValid(.string(text)), "under not, a match must reject")
        let long = String(repeating: "a", count: 50_000) + "1"
        #expect(try !matches(pattern, long))
    }

    @Test("Annex B literals: a lone '{', '}' and ']' are text", arguments: [
        ("a{", "xa{y", true), ("a{", "a", false), ("a{1", "a{1", true), ("a{1,", "a{1,", true), ("x{,5}", "x{,5}", true),
        ("}", "}", true), ("]", "a]", true), ("a{2}{", "aa{", true), ("\\a\\e", "ae", true), ("\\x4", "x4", true),
        ("\\u12", "u12", true),
    ])
    func annexBLiterals(pattern: String, text: String, expected: Bool) throws {
        #expect(try matches(pattern, text) == expected)
    }

    @Test("ECMA-262 syntax errors are SCHEMA_INVALID at load", arguments: [
        "^a++$", "a**", "a{2}{3}", "a+?+", "*a", "+", "?", "{2}", "x{3,2}", "(a", "a)", "[a", "[z-a]", "(?x)", "^*", "$+", "\\b+",
    ])
    func syntaxErrors(pattern: String) {
        let error = refusal(pattern)
        #expect(error?.code == .schemaInvalid, "\(pattern)")
        #expect(error?.path == "/pattern")
    }

    @Test("Valid patterns outside the matcher are SCHEMA_KEYWORD_UNSUPPORTED, naming pattern and path", arguments: [
        "(a)\\1", "(?=a)", "(?!a)", "(?<=a)b", "(?<!a)b", "\\k<x>", "a{1001}", "a{2,5000}", "\\p{Script=Greek}",
        "\\p{sc=Latn}", "\\p{Alphabetic}", "\\p{Nope}", "\\07", "\\c1", "\\uD800", "\\u{41}",
        "(a{1000}){1000}",
    ])
    func unsupported(pattern: String) {
        let error = refusal(pattern)
        #expect(error?.code == .schemaKeywordUnsupported, "\(pattern)")
        #expect(error?.path == "/pattern")
        #expect(error?.message.contains(pattern) == true)
        #expect(error?.message.contains("patterns/v1.schema.json") == true)
    }

    @Test("patternProperties keys are refused the same way, at the key's path")
    func patternPropertiesRefusal() throws {
        let unsupported = #expect(throws: SluiceError.self) {
            try JSONSchema(try JSONParser.parse(#"{"patternProperties":{"^(?=x)":true}}"#), source: "s")
        }
        #expect(unsupported?.code == .schemaKeywordUnsupported)
        #expect(unsupported?.path == "/patternProperties/^(?=x)")
        let invalid = #expect(throws: SluiceError.self) {
            try JSONSchema(try JSONParser.parse(#"{"patternProperties":{"a**":true}}"#), source: "s")
        }
        #expect(invalid?.code == .schemaInvalid)
    }

    @Test("Unicode general categories: \\p{…}, \\P{…}, long names, gc=, inside and outside brackets", arguments: [
        ("^\\p{L}+$", "Éa漢", true), ("^\\p{L}+$", "a1", false), ("^\\p{Lu}$", "É", true), ("^\\p{Lu}$", "é", false),
        ("^\\P{L}$", "1", true), ("^\\P{L}$", "a", false), ("^\\p{Letter}$", "ж", true), ("^\\p{gc=Nd}+$", "٣3", true),
        ("^\\p{General_Category=Uppercase_Letter}$", "Q", true), ("^[\\p{Lu}\\d]+$", "A1B2", true),
        ("^[\\p{Lu}\\d]+$", "a", false), ("^[^\\p{L}]$", "!", true), ("^[^\\p{L}]$", "k", false),
        ("^[\\P{L}x]+$", "x1!", true), ("^[\\P{L}x]+$", "y", false), ("^\\p{N}$", "½", true), ("^\\p{Mn}$", "\u{301}", true),
        ("^\\p{So}$", "😀", true), ("^\\p{Cn}$", "\u{378}", true),
    ])
    func generalCategories(pattern: String, text: String, expected: Bool) throws {
        #expect(try matches(pattern, text) == expected, "\(pattern) on \(text)")
    }

    @Test("Word boundaries, negated escapes in brackets, and class ranges next to escapes", arguments: [
        ("\\bcat\\b", "a cat!", true), ("\\bcat\\b", "concat", false), ("\\Bcat", "concat", true), ("^\\B$", "", true),
        ("^[\\S\\s]+$", "any\nthing", true), ("^[\\D]$", "a", true), ("^[\\D]$", "1", false), ("^[\\W]$", "_", false),
        ("^[\\d-z]+$", "1-z", true), ("^[\\d-z]+$", "y", false), ("^[\\b]$", "\u{8}", true), ("^\\cJ$", "\n", true),
        ("^(?<year>\\d{4})-\\d\\d$", "2025-01", true), ("^\\uD83D\\uDE00$", "😀", true), ("^a{2,3}?$", "aaa", true),
    ])
    func otherSyntax(pattern: String, text: String, expected: Bool) throws {
        #expect(try matches(pattern, text) == expected, "\(pattern) on \(text)")
    }
}
