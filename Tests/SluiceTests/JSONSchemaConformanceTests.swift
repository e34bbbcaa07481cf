import Foundation
import Sluice
import Testing

/// The official JSON Schema Test Suite (draft 2020-12), from `../shared/conformance`, run for
/// every file of a keyword Sluice's validator supports.
@Suite("JSON Schema conformance: the official test suite, draft 2020-12")
struct JSONSchemaConformanceTests {
    /// Files of supported keywords: every case in them must pass.
    static let supportedFiles = [
        "additionalProperties", "allOf", "anyOf", "boolean_schema", "const", "contains", "content",
        "default", "dependentRequired", "enum", "exclusiveMaximum", "exclusiveMinimum", "format",
        "if-then-else", "infinite-loop-detection", "items", "maxContains", "maxItems", "maxLength",
        "maxProperties", "maximum", "minContains", "minItems", "minLength", "minProperties", "minimum",
        "multipleOf", "not", "oneOf", "pattern", "patternProperties", "prefixItems", "properties", "ref",
        "required", "type", "uniqueItems",
    ]

    /// Files of keywords outside the contract's set; schemas using them are refused at load.
    static let unsupportedFiles = [
        "anchor": "$anchor (location-independent identifiers)",
        "defs": "validating a schema against the remote 2020-12 metaschema ($defs itself is covered by ref.json)",
        "dependentSchemas": "dependentSchemas",
        "dynamicRef": "$dynamicRef / $dynamicAnchor",
        "propertyNames": "propertyNames",
        "refRemote": "$ref to other documents",
        "unevaluatedItems": "unevaluatedItems",
        "unevaluatedProperties": "unevaluatedProperties",
        "vocabulary": "$vocabulary through a custom metaschema",
    ]

    static var suiteDirectory: URL {
        // Tests/SluiceTests/<this file> → the package root → ../shared/conformance/…
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/conformance/json-schema-test-suite/tests/draft2020-12")
    }

    struct Outcome { var cases = 0; var refusedGroups: [String] = [] }

    static func run(file: String) throws -> Outcome {
        let url = suiteDirectory.appendingPathComponent(file + ".json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            throw SluiceError(code: "SUITE_MISSING", message: "the official suite is not at \(url.path): the conformance tests need ../shared/conformance beside the package")
        }
        let groups = try JSONParser.parse(Array(try Data(contentsOf: url)), limits: JSONParseLimits(maxBytes: 1 << 24, maxDepth: 256, maxStringLength: 1 << 20))
        guard case .array(let list) = groups else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
        var outcome = Outcome()
        for group in list {
            guard case .object(let object) = group, case .string(let description)? = object["description"],
                let schemaDocument = object["schema"], case .array(let tests)? = object["tests"]
            else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
            let schema: JSONSchema
            do {
                schema = try JSONSchema(schemaDocument, source: "\(file).json")
            } catch {
                // Only a refusal for something outside the contract's set is acceptable here.
                #expect(error.code == .schemaKeywordUnsupported, "\(file): \(description): refused with \(error)")
                outcome.refusedGroups.append("\(description) — \(error.message)")
                continue
            }
            for test in tests {
                guard case .object(let testObject) = test, case .string(let testDescription)? = testObject["description"],
                    let data = testObject["data"], case .bool(let expected)? = testObject["valid"]
                else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
                outcome.cases += 1
                let valid = schema.isValid(data)
                #expect(valid == expected, "\(file): \(description): \(testDescription)")
                // validate() must agree with isValid(), and explain every failure.
                let violations = schema.validate(data)
                #expect(violations.isEmpty == expected, "\(file): \(description): \(testDescription): \(violations)")
            }
        }
        return outcome
    }

    @Test("Every case of a supported keyword's file passes", arguments: supportedFiles)
    func supported(file: String) throws {
        let outcome = try Self.run(file: file)
        print("conformance \(file): \(outcome.cases) cases passed; \(outcome.refusedGroups.count) group(s) refused at load\(outcome.refusedGroups.isEmpty ? "" : ": " + outcome.refusedGroups.joined(separator: "; "))")
        #expect(outcome.cases > 0)
    }

    @Test("Schemas using keywords outside the contract are refused at load, naming the keyword", arguments: unsupportedFiles.keys.sorted())
    func unsupported(file: String) throws {
        let outcome = try Self.run(file: file)
        print("conformance \(file) (\(Self.unsupportedFiles[file] ?? "")): \(outcome.refusedGroups.count) group(s) refused, \(outcome.cases) cases of groups that use only supported keywords passed")
        #expect(!outcome.refusedGroups.isEmpty)
    }

    @Test("The suite directory holds no file this test forgets")
    func everyFileAccountedFor() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        #expect(Set(files) == Set(Self.supportedFiles).union(Self.unsupportedFiles.keys))
    }
}
