import Foundation
import Sluice
import SluiceTestFixtures
import Testing

/// Runs the real `sluice` executable (built next to the test bundle) on temporary files.
@Suite("sluice schemas (CLI)")
struct EnvelopeSchemasCommandTests {
    typealias Fixtures = EnvelopeTestFixtures

    struct Outcome {
        var status: Int32
        var standardOutput: String
        var standardError: String
    }

    /// The `sluice` executable in the build products directory, which also holds the tests.
    static let executable: URL? = {
        var candidates: [URL] = [Bundle.main.bundleURL]
        if let executableURL = Bundle.main.executableURL { candidates.append(executableURL.deletingLastPathComponent()) }
        if let argument = CommandLine.arguments.first {
            candidates.append(URL(fileURLWithPath: argument).deletingLastPathComponent())
        }
        for directory in candidates {
            var current = directory
            for _ in 0..<4 {
                let candidate = current.appendingPathComponent("sluice")
                if FileManager.default.isExecutableFile(atPath: candidate.path) { return candidate }
                current = current.deletingLastPathComponent()
            }
        }
        return nil
    }()

    func run(_ arguments: [String]) throws -> Outcome {
        let executable = try #require(Self.executable, "the sluice executable was not built next to the tests")
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        let output = Pipe()
        let error = Pipe()
        process.standardOutput = output
        process.standardError = error
        try process.run()
        let outputData = output.fileHandleForReading.readDataToEndOfFile()
        let errorData = error.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return Outcome(
            status: process.terminationStatus, standardOutput: String(decoding: outputData, as: UTF8.self),
            standardError: String(decoding: errorData, as: UTF8.self))
    }

    static let v1 = #"{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"kind":{"enum":["a","b"]}}}"#

    @Test("check passes on the repository's EventSchemas")
    func checkRepository() throws {
        let outcome = try run(["schemas", "check", "--dir", Fixtures.eventSchemasDirectory])
        #expect(outcome.status == 0, "\(outcome.standardOutput)\(outcome.standardError)")
        #expect(outcome.standardOutput.contains("SCHEMA"))
        #expect(outcome.standardOutput.contains("billing.payment_authorized v1→v2"))
        #expect(outcome.standardOutput.contains("optional_field_added"))
        #expect(outcome.standardOutput.contains("0 breaking"))
    }

    @Test("check exits 1 and names the rule on a breaking change")
    func checkBreaking() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        try Fixtures.write(Self.v1, to: "orders.order_shipped/v1.schema.json", in: directory)
        try Fixtures.write(
            #"{"type":"object","required":["id","carrier"],"properties":{"id":{"type":"string"},"carrier":{"type":"string"},"kind":{"enum":["a","b"]}}}"#,
            to: "orders.order_shipped/v2.schema.json", in: directory)
        let outcome = try run(["schemas", "check", "--dir", directory])
        #expect(outcome.status == 1)
        #expect(outcome.standardOutput.contains("orders.order_shipped v1→v2"))
        #expect(outcome.standardOutput.contains("/properties/carrier"))
        #expect(outcome.standardOutput.contains("required_field_added"))
        #expect(outcome.standardOutput.contains("BREAKING"))
        #expect(outcome.standardOutput.contains("FAILED"))
    }

    @Test("check exits 0 on warnings only, and says so")
    func checkWarning() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        try Fixtures.write(Self.v1, to: "orders.order_shipped/v1.schema.json", in: directory)
        try Fixtures.write(
            #"{"type":"object","required":["id"],"properties":{"id":{"type":"string"},"kind":{"enum":["a","b","c"]}}}"#,
            to: "orders.order_shipped/v2.schema.json", in: directory)
        let outcome = try run(["schemas", "check", "--dir", directory])
        #expect(outcome.status == 0)
        #expect(outcome.standardOutput.contains("enum_value_added"))
        #expect(outcome.standardOutput.contains("WARNING"))
        #expect(outcome.standardOutput.contains("warnings do not fail"))
    }

    @Test("check reports a required field made optional as a WARNING, names the field, and exits 0")
    func checkRequiredMadeOptional() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        try Fixtures.write(Self.v1, to: "orders.order_shipped/v1.schema.json", in: directory)
        try Fixtures.write(
            #"{"type":"object","properties":{"id":{"type":"string"},"kind":{"enum":["a","b"]}}}"#,
            to: "orders.order_shipped/v2.schema.json", in: directory)
        let outcome = try run(["schemas", "check", "--dir", directory])
        #expect(outcome.status == 0, "a warning does not fail the gate")
        #expect(outcome.standardOutput.contains("/properties/id"))
        #expect(outcome.standardOutput.contains("field_made_optional"))
        #expect(outcome.standardOutput.contains("WARNING"))
        #expect(!outcome.standardOutput.contains("PASS  field_made_optional"))
    }

    @Test("check exits 2 with the reason when a schema file is refused")
    func checkRefusedDirectory() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        try Fixtures.write("{nope", to: "orders.order_shipped/v1.schema.json", in: directory)
        let outcome = try run(["schemas", "check", "--dir", directory])
        #expect(outcome.status == 2)
        #expect(outcome.standardError.contains("SCHEMA_FILE_INVALID"))
        #expect(outcome.standardError.contains("v1.schema.json"))
    }

    @Test("validate reports each failing envelope line with number, code and path, then exits 1")
    func validateEnvelopes() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        let lines = [
            Fixtures.envelope(),
            Fixtures.envelope(["event_id": "bad id"]),
            Fixtures.envelope(data: ["amount_minor": -5]),
        ].map { String(decoding: $0, as: UTF8.self) }
        let file = directory + "/events.jsonl"
        try Fixtures.write(lines.joined(separator: "\n") + "\n", to: "events.jsonl", in: directory)
        let outcome = try run(["schemas", "validate", "--file", file, "--dir", Fixtures.eventSchemasDirectory])
        #expect(outcome.status == 1)
        #expect(outcome.standardOutput.contains("line 2: EVENT_ID_INVALID at /event_id"))
        #expect(outcome.standardOutput.contains("line 3: PAYLOAD_SCHEMA_VIOLATION at /data/amount_minor"))
        #expect(!outcome.standardOutput.contains("line 1:"))
        #expect(outcome.standardOutput.contains("Checked 3 lines: 1 valid, 2 failed"))
    }

    @Test("validate accepts a valid snapshot file and exits 0")
    func validateSnapshot() throws {
        let directory = try Fixtures.makeTemporaryDirectory()
        defer { Fixtures.removeDirectory(directory) }
        let lines = (0..<3).map { offset in
            SnapshotRecordCoding.encode(
                Record(
                    topic: "billing", partition: 0, offset: Offset(Int64(offset)),
                    timestamp: RecordTimestamp(milliseconds: 1_738_324_800_000, type: .createTime),
                    key: Array("inv_456".utf8),
                    value: Fixtures.envelope(["event_id": "evt_\(offset)"])))
        }
        try Fixtures.write(lines.joined(separator: "\n") + "\n", to: "billing.snapshot.jsonl", in: directory)
        let outcome = try run([
            "schemas", "validate", "--file", directory + "/billing.snapshot.jsonl", "--dir",
            Fixtures.eventSchemasDirectory,
        ])
        #expect(outcome.status == 0, "\(outcome.standardOutput)")
        #expect(outcome.standardOutput.contains("Checked 3 lines: 3 valid, 0 failed"))
    }

    @Test("validate exits 2 when the file cannot be read")
    func validateMissingFile() throws {
        let outcome = try run([
            "schemas", "validate", "--file", "/nonexistent/file.jsonl", "--dir", Fixtures.eventSchemasDirectory,
        ])
        #expect(outcome.status == 2)
    }
}
