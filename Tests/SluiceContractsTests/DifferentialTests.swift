import Foundation
import SluiceContracts
import Testing

/// Sluice's validator against python-jsonschema (4.26, draft 2020-12) on generated schemas and
/// instances, so that a disagreement with the specification cannot come back unnoticed.
///
/// A seeded generator writes schemas from the supported keywords and, for each, instances: valid
/// ones built from the schema's own names, numbers and strings, mutations of them (a last digit
/// changed, `1` written `1.0` or `1e0`, a name swapped for a canonically equivalent one), and
/// random values with unusual member names (NFC/NFD, reordered combining marks, KELVIN SIGN),
/// big and precise numbers, astral and combining characters. Both sides read the same JSON
/// text; Sluice's answer comes from `isValid`, checked against `validate` too.
///
/// Dialect differences, excluded by rule and never by case:
/// - Regular expressions: Python's `re` is not ECMA-262 (`\d`, `\w`, `\s` and `.` mean other
///   things, `$` also matches before a final line feed). Generated patterns use only syntax
///   both read alike: literal characters, bracket classes of literal characters and ranges,
///   `(?:…)`, `|`, `* + ?`, `{n,m}` and the anchors `^` and `$`; and generated strings contain no
///   line feed.
/// - Numbers: Python parses decimals to binary floats, which round. The referee parses them as
///   exact `Decimal`s and defines `integer` as an integral value (the specification's
///   definition). Where `Decimal` arithmetic itself gives up (`InvalidOperation`), the referee
///   answers `null` and the case is counted as not comparable, not as agreement.
/// - `format` is not generated (assertion is off on both sides anyway).
///
/// Size: 300 schemas × 20 instances by default (seed 17); `SLUICE_DIFFERENTIAL_LONG=1` runs
/// 2,000 × 60 (120,000 instances), and `SLUICE_DIFFERENTIAL_SEED` picks another seed.
/// The referee's interpreter is `SLUICE_TEST_PYTHON` (`scripts/test.sh` makes a virtual
/// environment with `jsonschema==4.26.0`). Without it the test fails when `CI=true`, and is
/// skipped otherwise.
@Suite("Differential: Sluice's validator agrees with python-jsonschema")
struct DifferentialTests {
    static let environment = ProcessInfo.processInfo.environment
    static let python = environment["SLUICE_TEST_PYTHON"].flatMap { $0.isEmpty ? nil : $0 }
    static let isCI = environment["CI"] == "true"

    @Test(
        "Generated schemas and instances: no unexplained disagreement",
        .enabled(
            if: DifferentialTests.python != nil || DifferentialTests.isCI,
            "SLUICE_TEST_PYTHON is unset: the differential test needs python-jsonschema 4.26 (scripts/test.sh sets it up)"))
    func differential() throws {
        guard let python = Self.python else {
            Issue.record(
                "CI=true but SLUICE_TEST_PYTHON is unset: the differential test needs a python with jsonschema==4.26.0 (scripts/test.sh creates one)")
            return
        }
        let long = Self.environment["SLUICE_DIFFERENTIAL_LONG"] == "1"
        let schemaCount = long ? 2_000 : 300
        let instancesPerSchema = long ? 60 : 20
        let seed = Self.environment["SLUICE_DIFFERENTIAL_SEED"].flatMap { UInt64($0) } ?? 17

        var generator = DifferentialGenerator(seed: seed)
        var cases: [(schema: String, instances: [String])] = []
        for _ in 0..<schemaCount {
            let schema = generator.schema(depth: 0)
            let instances = (0..<instancesPerSchema).map { _ in generator.instance(for: schema) }
            cases.append((schema.serialized(), instances.map { $0.serialized() }))
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(
            "sluice-differential-" + UUID().uuidString)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer {
            do {
                try FileManager.default.removeItem(at: directory)
            } catch {
                // A leftover temporary directory is harmless; the verdict does not depend on it.
                print("could not remove \(directory.path): \(error)")
            }
        }
        let casesFile = directory.appendingPathComponent("cases.jsonl")
        var text = ""
        for entry in cases {
            text += #"{"schema":"# + entry.schema + #","instances":["# + entry.instances.joined(separator: ",") + "]}\n"
        }
        try Data(text.utf8).write(to: casesFile)

        let answers = try Self.runReferee(python: python, casesFile: casesFile)
        try #require(answers.count == cases.count, "the referee answered \(answers.count) of \(cases.count) cases")

        var compared = 0
        var notComparable = 0
        var validCount = 0
        var disagreements: [String] = []
        for (index, entry) in cases.enumerated() {
            let schema = try JSONSchema(try JSONParser.parse(entry.schema), source: "differential case \(index)")
            let expected = answers[index]
            try #require(expected.count == entry.instances.count)
            for (offset, instanceText) in entry.instances.enumerated() {
                let instance = try JSONParser.parse(instanceText)
                let valid = schema.isValid(instance)
                #expect(valid == schema.validate(instance).isEmpty, "isValid and validate disagree: \(entry.schema) on \(instanceText)")
                guard let reference = expected[offset] else {
                    notComparable += 1
                    continue
                }
                compared += 1
                if reference { validCount += 1 }
                if valid != reference, disagreements.count < 20 {
                    disagreements.append("schema \(entry.schema)\n  instance \(instanceText)\n  Sluice \(valid), python-jsonschema \(reference)")
                }
            }
        }
        print(
            "differential: seed \(seed), \(cases.count) schemas, \(compared + notComparable) instances, "
                + "\(compared) compared (\(validCount) valid), \(notComparable) not comparable (Decimal gave up), \(disagreements.count) disagreements")
        let listing = disagreements.joined(separator: "\n")
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements (first 20):\n\(listing)")
        #expect(compared >= (compared + notComparable) * 99 / 100, "too many cases the referee could not compare")
        // A generator that made only valid or only invalid instances would test little.
        #expect(validCount > compared / 5 && validCount < compared * 4 / 5, "\(validCount) of \(compared) valid")
    }

    /// Runs Differential/referee.py on the cases; one array of answers per case.
    static func runReferee(python: String, casesFile: URL) throws -> [[Bool?]] {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("Differential/referee.py")
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script.path, casesFile.path]
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        // Read before waiting: a full pipe would block the referee forever.
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let errorText = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            throw SluiceError(
                code: "REFEREE_FAILED",
                message: "\(python) \(script.path) exited with \(process.terminationStatus): \(errorText)")
        }
        var answers: [[Bool?]] = []
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            guard case .array(let values) = try JSONParser.parse(String(line)) else {
                throw SluiceError(code: "REFEREE_OUTPUT", message: String(line))
            }
            answers.append(
                try values.map { value throws(SluiceError) -> Bool? in
                    switch value {
                    case .bool(let flag): return flag
                    case .null: return nil
                    default: throw SluiceError(code: "REFEREE_OUTPUT", message: String(line))
                    }
                })
        }
        return answers
    }
}

/// The seeded generator of schemas and instances (SplitMix64, so a seed means the same cases
/// on every platform).
struct DifferentialGenerator {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func below(_ bound: Int) -> Int { Int(next() % UInt64(bound)) }
    mutating func chance(_ percent: Int) -> Bool { below(100) < percent }
    mutating func pick<T>(_ choices: [T]) -> T { choices[below(choices.count)] }

    /// Names that Swift's `String ==` confuses and JSON does not, and some plain ones.
    static let names = [
        "a", "b", "id", "K", "\u{212A}", "\u{E9}", "e\u{301}", "q\u{323}\u{301}", "q\u{301}\u{323}", "😀", "",
        "aaaq\u{323}\u{301}aaaaaaaaaaaaaaaaaaaaaa", "aaaq\u{301}\u{323}aaaaaaaaaaaaaaaaaaaaaa", "x~/y",
    ]
    /// Pieces of strings: ASCII, combining, NFC/NFD, astral; no line feed (see the rules).
    static let stringPieces = [
        "a", "b", "z", "A", "0", "7", " ", "\t", "-", "_", "\u{E9}", "e\u{301}", "\u{301}", "\u{323}", "K", "\u{212A}",
        "😀", "𝒜", "ж", "漢", "\u{2028}", "\r",
    ]
    /// Number literals: big integers around 2^64 and 2^70, precise decimals, exponents.
    static let numberLiterals = [
        "0", "1", "-1", "2", "3", "7", "10", "100", "1e2", "1.0", "1.00", "0.1", "0.3", "0.5", "2.5", "-0.75", "1e-2",
        "9007199254740993", "18446744073709551615", "18446744073709551616", "18446744073709551617",
        "1180591620717411303424", "1180591620717411303425", "-1180591620717411303425", "123456789012345678901234567890",
        "0.1000000000000000000000001", "3.14159265358979323846264338327950288", "1e30", "1.5e-20", "12345678901234567890.5",
        "0.30000000000000000000000000001", "4e-30",
    ]
    static let patterns = [
        "^a", "a", "^[a-z]+$", "^(?:ab|c)*$", "b+", "^[^a]", "\u{E9}", "e\u{301}", "^q\u{323}", "😀+", "[0-9]{2,3}",
        "^(?:K|\u{212A})$", "^[\u{E9}e]\u{301}?$", "^[a-zA-Z_][a-zA-Z0-9_]*$", "x|y|z", "^$",
    ]

    mutating func number() -> JSONValue {
        var literal = pick(Self.numberLiterals)
        if chance(30) { literal = Self.mutate(number: literal, choice: below(4)) }
        return Self.parse(literal)
    }

    static func parse(_ literal: String) -> JSONValue {
        do {
            return try JSONParser.parse(literal)
        } catch {
            preconditionFailure("generator made an invalid literal \(literal): \(error)")
        }
    }

    /// Same value in another spelling, or a neighbour that differs in the last digit.
    static func mutate(number literal: String, choice: Int) -> String {
        let hasExponent = literal.contains("e")
        switch choice {
        case 0 where !hasExponent: return literal.contains(".") ? literal + "0" : literal + ".0"
        case 1 where !hasExponent: return literal + "e0"
        case 2:
            // Bump the last digit of the significand.
            var scalars = Array(literal.unicodeScalars)
            let end = scalars.firstIndex(of: "e") ?? scalars.count
            guard let last = scalars[..<end].lastIndex(where: { ("0"..."9").contains($0) }) else { return literal }
            let digit = scalars[last].value - 0x30
            scalars[last] = Unicode.Scalar(0x30 + (digit + 1) % 10)!
            return String(String.UnicodeScalarView(scalars))
        default: return literal.hasPrefix("-") ? String(literal.dropFirst()) : "-" + literal
        }
    }

    mutating func string() -> String {
        (0..<below(5)).map { _ in pick(Self.stringPieces) }.joined()
    }

    mutating func count(_ limit: Int) -> JSONValue { .number(JSONNumber(Int64(below(limit)))) }

    /// A random value of any type, nested at most `depth` more levels.
    mutating func value(depth: Int) -> JSONValue {
        switch below(depth > 0 ? 7 : 5) {
        case 0: return .null
        case 1: return .bool(chance(50))
        case 2, 3: return number()
        case 4: return .string(string())
        case 5: return .array((0..<below(4)).map { _ in value(depth: depth - 1) })
        default:
            return .object(JSONObject((0..<below(4)).map { _ in (pick(Self.names), value(depth: depth - 1)) }))
        }
    }

    mutating func schema(depth: Int) -> JSONValue {
        if depth > 0 && chance(10) { return .bool(chance(70)) }
        var members: [(key: String, value: JSONValue)] = []
        for _ in 0..<(1 + below(3)) {
            members.append(contentsOf: keyword(depth: depth))
        }
        return .object(JSONObject(members))
    }

    mutating func keyword(depth: Int) -> [(key: String, value: JSONValue)] {
        let nested = depth < 2
        switch below(nested ? 24 : 16) {
        case 0:
            let types = ["null", "boolean", "object", "array", "number", "string", "integer"]
            return [("type", chance(70) ? .string(pick(types)) : .array([.string(pick(types)), .string(pick(types))]))]
        case 1: return [("enum", .array((0..<(1 + below(3))).map { _ in value(depth: 1) }))]
        case 2: return [("const", value(depth: 1))]
        case 3: return [("minimum", number())]
        case 4: return [("maximum", number())]
        case 5: return [("exclusiveMinimum", number())]
        case 6: return [("exclusiveMaximum", number())]
        case 7:
            var divisor = number()
            if case .number(let value) = divisor, !(value > JSONNumber(Int64(0))) { divisor = Self.parse(pick(["2", "0.1", "3", "1e-30", "18446744073709551616", "0.5"])) }
            return [("multipleOf", divisor)]
        case 8: return [(chance(50) ? "minLength" : "maxLength", count(5))]
        case 9: return [("pattern", .string(pick(Self.patterns)))]
        case 10: return [("required", .array((0..<(1 + below(2))).map { _ in .string(pick(Self.names)) }))]
        case 11: return [(chance(50) ? "minProperties" : "maxProperties", count(4))]
        case 12: return [(chance(50) ? "minItems" : "maxItems", count(4))]
        case 13: return [("uniqueItems", .bool(chance(80)))]
        case 14:
            return [("dependentRequired", .object(JSONObject([(pick(Self.names), .array([.string(pick(Self.names))]))])))]
        case 15: return [("type", .string(pick(["object", "array", "number", "integer", "string"])))]
        case 16:
            let properties = (0..<(1 + below(3))).map { _ in (pick(Self.names), schema(depth: depth + 1)) }
            var result: [(key: String, value: JSONValue)] = [("properties", .object(JSONObject(properties)))]
            if chance(40) { result.append(("additionalProperties", chance(60) ? .bool(false) : schema(depth: depth + 1))) }
            return result
        case 17:
            return [("patternProperties", .object(JSONObject([(pick(Self.patterns), schema(depth: depth + 1))])))]
        case 18: return [("items", schema(depth: depth + 1))]
        case 19: return [("prefixItems", .array((0..<(1 + below(2))).map { _ in schema(depth: depth + 1) }))]
        case 20:
            var result: [(key: String, value: JSONValue)] = [("contains", schema(depth: depth + 1))]
            if chance(40) { result.append(("minContains", count(3))) }
            if chance(40) { result.append(("maxContains", count(3))) }
            return result
        case 21:
            let keyword = pick(["allOf", "anyOf", "oneOf"])
            return [(keyword, .array((0..<(1 + below(3))).map { _ in schema(depth: depth + 1) }))]
        case 22: return [("not", schema(depth: depth + 1))]
        default:
            var result: [(key: String, value: JSONValue)] = [("if", schema(depth: depth + 1))]
            if chance(70) { result.append(("then", schema(depth: depth + 1))) }
            if chance(70) { result.append(("else", schema(depth: depth + 1))) }
            return result
        }
    }

    /// An instance for `schema`: built from its own values (often valid), mutated, or random.
    mutating func instance(for schema: JSONValue) -> JSONValue {
        var pool: [JSONValue] = []
        Self.collect(schema, into: &pool)
        switch below(10) {
        case 0, 1, 2: return value(depth: 2)
        case 3, 4:
            guard !pool.isEmpty else { return value(depth: 2) }
            return mutate(pick(pool))
        case 5, 6:
            guard !pool.isEmpty else { return value(depth: 2) }
            return pick(pool)
        default:
            // An object or array made of the schema's names and values.
            let names = pool.compactMap { if case .string(let text) = $0 { return text } else { return nil } } + Self.names
            if chance(60) {
                return .object(JSONObject((0..<below(5)).map { _ in (pick(names), pool.isEmpty || chance(30) ? value(depth: 1) : pick(pool)) }))
            }
            return .array((0..<below(5)).map { _ in pool.isEmpty || chance(30) ? value(depth: 1) : pick(pool) })
        }
    }

    /// Every value a schema mentions: numbers, strings (names included), const and enum values.
    static func collect(_ schema: JSONValue, into pool: inout [JSONValue]) {
        switch schema {
        case .object(let object):
            for (name, value) in object.members {
                pool.append(.string(name))
                collect(value, into: &pool)
            }
        case .array(let elements):
            for element in elements { collect(element, into: &pool) }
        case .number, .string:
            pool.append(schema)
        case .null, .bool:
            break
        }
        if case .object(let object) = schema {
            if let constant = object["const"] { pool.append(constant) }
            if case .array(let values)? = object["enum"] { pool += values }
        }
    }

    mutating func mutate(_ value: JSONValue) -> JSONValue {
        switch value {
        case .number(let number):
            return Self.parse(Self.mutate(number: number.description, choice: below(4)))
        case .string(let text):
            // A canonically equivalent spelling, or one piece more.
            let swaps: [(String, String)] = [
                ("\u{E9}", "e\u{301}"), ("e\u{301}", "\u{E9}"), ("K", "\u{212A}"), ("\u{212A}", "K"),
                ("\u{323}\u{301}", "\u{301}\u{323}"), ("\u{301}\u{323}", "\u{323}\u{301}"),
            ]
            for (from, to) in swaps.shuffled(using: &self) where text.unicodeScalars.count >= from.unicodeScalars.count {
                let replaced = Self.replacingScalars(from, with: to, in: text)
                if !replaced.unicodeScalars.elementsEqual(text.unicodeScalars) { return .string(replaced) }
            }
            return .string(text + pick(Self.stringPieces))
        case .array(let elements):
            guard !elements.isEmpty else { return .array([value]) }
            var copy = elements
            let index = below(copy.count)
            copy[index] = mutate(copy[index])
            return .array(copy)
        case .object(let object):
            guard !object.members.isEmpty else { return .object(JSONObject([(pick(Self.names), .null)])) }
            var members = object.members
            let index = below(members.count)
            if chance(50) {
                members[index].value = mutate(members[index].value)
            } else if case .string(let renamed) = mutate(.string(members[index].key)) {
                members[index].key = renamed
            }
            return .object(JSONObject(members))
        case .bool(let flag): return chance(50) ? .bool(!flag) : .number(JSONNumber(Int64(flag ? 1 : 0)))
        case .null: return chance(50) ? .bool(false) : .number(JSONNumber(Int64(0)))
        }
    }

    /// Replaces code-point sequences (String's own replacing works on Characters, which would
    /// miss a mark inside a cluster).
    static func replacingScalars(_ target: String, with replacement: String, in text: String) -> String {
        let source = Array(text.unicodeScalars)
        let pattern = Array(target.unicodeScalars)
        var result = String.UnicodeScalarView()
        var index = 0
        while index < source.count {
            if index + pattern.count <= source.count, Array(source[index..<index + pattern.count]) == pattern {
                result.append(contentsOf: replacement.unicodeScalars)
                index += pattern.count
            } else {
                result.append(source[index])
                index += 1
            }
        }
        return String(result)
    }
}

extension DifferentialGenerator: RandomNumberGenerator {}
