import Foundation
import SluiceContracts
import Testing

/// The official JSON Schema Test Suite (draft 2020-12), shipped with these tests as a resource
/// (`Resources/JSONSchemaTestSuite`, with its licence and commit), run for every file of a keyword
/// Sluice's validator supports.
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

    /// Files of keywords outside the contract's set: not run as conformance cases. That such
    /// schemas are refused is checked by ``unsupportedKeywordFilesAreRefused(file:)`` below.
    static let unsupportedFiles = [
        "anchor": "$anchor (location-independent identifiers) is outside the contract",
        "defs": "validates against the remote 2020-12 metaschema, a $ref to another document; $defs itself runs in ref.json and others",
        "dependentSchemas": "dependentSchemas is outside the contract",
        "dynamicRef": "$dynamicRef / $dynamicAnchor are outside the contract",
        "propertyNames": "propertyNames is outside the contract",
        "refRemote": "$ref to other documents is outside the contract",
        "unevaluatedItems": "unevaluatedItems is outside the contract",
        "unevaluatedProperties": "unevaluatedProperties is outside the contract",
        "vocabulary": "$vocabulary through a custom metaschema is outside the contract",
    ]

    /// Groups inside supported files whose schema uses something outside the contract. Each
    /// must be refused at load with `SCHEMA_KEYWORD_UNSUPPORTED`; a group refused but not listed
    /// here, or listed but not refused, fails the test.
    static let expectedRefusals: [String: Set<String>] = [
        "additionalProperties": [
            "additionalProperties with propertyNames",  // propertyNames
            "dependentSchemas with additionalProperties",  // dependentSchemas
        ],
        "not": [
            "collect annotations inside a 'not', even if collection is disabled",  // unevaluatedProperties
        ],
        "ref": [
            "remote ref, containing refs itself",  // $ref to the remote metaschema
            "Recursive references between schemas",  // nested $id
            "ref creates new scope when adjacent to keywords",  // unevaluatedProperties
            "refs with relative uris and defs",  // nested $id
            "relative refs with absolute uris and defs",  // nested $id
            "$id must be resolved against nearest parent, not just immediate parent",  // nested $id
            "order of evaluation: $id and $ref",  // nested $id
            "order of evaluation: $id and $anchor and $ref",  // $anchor
            "order of evaluation: $id and $ref on nested schema",  // nested $id
            "URN base URI with URN and anchor ref",  // $anchor
            "URN ref with nested pointer ref",  // nested $id
            "ref to if",  // nested $id
            "ref to then",  // nested $id
            "ref to else",  // nested $id
            "ref with absolute-path-reference",  // nested $id
        ],
    ]

    static var suiteDirectory: URL {
        Bundle.module.bundleURL.appendingPathComponent("JSONSchemaTestSuite/draft2020-12")
    }

    struct Outcome { var cases = 0; var refusedGroups: [String] = [] }

    static func run(file: String) throws -> Outcome {
        let url = suiteDirectory.appendingPathComponent(file + ".json")
        guard FileManager.default.fileExists(atPath: url.path) else {
            // Fail, never skip: a missing suite must not look like a passing one.
            throw SluiceError(
                code: "SUITE_MISSING",
                message: "the official JSON Schema Test Suite is not at \(url.path); the test target's resources are incomplete")
        }
        let groups = try JSONParser.parse(Array(try Data(contentsOf: url)), limits: JSONParseLimits(maxBytes: 1 << 24, maxDepth: 256, maxStringLength: 1 << 20))
        guard case .array(let list) = groups else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
        var outcome = Outcome()
        let expected = expectedRefusals[file] ?? []
        for group in list {
            guard case .object(let object) = group, case .string(let description)? = object["description"],
                let schemaDocument = object["schema"], case .array(let tests)? = object["tests"]
            else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
            let schema: JSONSchema
            do {
                schema = try JSONSchema(schemaDocument, source: "\(file).json")
            } catch {
                // A refusal is acceptable only where it is expected, and only for something
                // outside the contract's set.
                #expect(
                    expected.contains(description),
                    "\(file): \(description): refused at load, but the group uses only supported keywords: \(error)")
                #expect(error.code == .schemaKeywordUnsupported, "\(file): \(description): refused with \(error)")
                outcome.refusedGroups.append(description)
                continue
            }
            #expect(
                !expected.contains(description),
                "\(file): \(description): expected to be refused with SCHEMA_KEYWORD_UNSUPPORTED, but it loaded")
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
        print("conformance \(file).json: \(outcome.cases) cases run; \(outcome.refusedGroups.count) group(s) refused at load as expected")
        #expect(outcome.cases > 0)
        #expect(outcome.refusedGroups.count == Self.expectedRefusals[file]?.count ?? 0)
    }

    @Test("All supported files together: the case count for the record")
    func total() throws {
        var cases = 0
        var refused = 0
        for file in Self.supportedFiles {
            let outcome = try Self.run(file: file)
            cases += outcome.cases
            refused += outcome.refusedGroups.count
        }
        print("conformance total: \(Self.supportedFiles.count) files, \(cases) cases run and passed, \(refused) groups refused at load as expected")
        #expect(cases > 900)
    }

    @Test("A file of an unsupported keyword is not run; its schemas are refused at load", arguments: unsupportedFiles.keys.sorted())
    func unsupportedKeywordFilesAreRefused(file: String) throws {
        let url = Self.suiteDirectory.appendingPathComponent(file + ".json")
        let groups = try JSONParser.parse(Array(try Data(contentsOf: url)), limits: JSONParseLimits(maxBytes: 1 << 24, maxDepth: 256, maxStringLength: 1 << 20))
        guard case .array(let list) = groups else { throw SluiceError(code: "SUITE_MALFORMED", message: file) }
        // Every group in these files exercises the unsupported keyword, so every schema is refused.
        for group in list {
            guard case .object(let object) = group, let schemaDocument = object["schema"] else { continue }
            let error = #expect(throws: SluiceError.self, "\(file): \(object["description"].map { $0.serialized() } ?? "")") {
                try JSONSchema(schemaDocument, source: "\(file).json")
            }
            #expect(error?.code == .schemaKeywordUnsupported)
        }
        print("conformance \(file).json not run (\(Self.unsupportedFiles[file] ?? "")); its \(list.count) schemas are refused at load")
    }

    @Test("The suite directory holds no file this test forgets")
    func everyFileAccountedFor() throws {
        let files = try FileManager.default.contentsOfDirectory(atPath: Self.suiteDirectory.path)
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
        #expect(Set(files) == Set(Self.supportedFiles).union(Self.unsupportedFiles.keys))
    }
}
