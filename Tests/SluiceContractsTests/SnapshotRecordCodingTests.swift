import Foundation
import SluiceContracts
import SluiceTestFixtures
import Testing

@Suite("Snapshot record coding")
struct SnapshotRecordCodingTests {
    @Test("a UTF-8 record writes the contract's line and reads back exactly")
    func utf8RoundTrip() throws {
        let record = Record(
            topic: "billing", partition: 3, offset: 42,
            timestamp: RecordTimestamp(milliseconds: 1_738_324_800_000, type: .createTime),
            key: Array("inv_456".utf8), value: Array(#"{"event_id":"e1","note":"naïve \"quoted\"\n"}"#.utf8),
            headers: [RecordHeader(name: "trace", string: "abc"), RecordHeader(name: "empty", value: nil)])
        let line = SnapshotRecordCoding.encode(record)
        #expect(
            line
                == #"{"topic":"billing","partition":3,"offset":42,"timestamp":1738324800000,"key":"inv_456","#
                + #""headers":[["trace","abc"],["empty",null]],"#
                + #""value":"{\"event_id\":\"e1\",\"note\":\"naïve \\\"quoted\\\"\\n\"}"}"#)
        let decoded = try SnapshotRecordCoding.decode(line: line)
        #expect(decoded == record)
        #expect(SnapshotRecordCoding.encode(decoded) == line)
    }

    @Test("non-UTF-8 key, header value and value are written base64 and read back byte for byte")
    func binaryRoundTrip() throws {
        let record = Record(
            topic: "raw", partition: 0, offset: 0, timestamp: nil, key: [0xFF, 0x00, 0x01],
            value: [0xC3, 0x28, 0x00, 0x7F],
            headers: [RecordHeader(name: "blob", value: [0x80]), RecordHeader(name: "text", string: "ok")])
        let line = SnapshotRecordCoding.encode(record)
        #expect(line.contains(#""key_b64":"/wAB""#))
        #expect(line.contains(#"["blob",{"b64":"gA=="}]"#))
        #expect(line.contains(#""value_b64":"wygAfw==""#))
        #expect(line.contains(#""timestamp":null"#))
        #expect(try SnapshotRecordCoding.decode(line: line) == record)
    }

    @Test("null key and null value (a tombstone) round-trip; control characters are escaped")
    func nullsAndControlCharacters() throws {
        let record = Record(
            topic: "t", partition: 1, offset: 7, timestamp: nil, key: nil, value: nil,
            headers: [RecordHeader(name: "ctl", value: [0x01, 0x09, 0x1F])])
        let line = SnapshotRecordCoding.encode(record)
        #expect(line.contains(#""key":null"#))
        #expect(line.contains(#""value":null"#))
        #expect(line.contains(#"["ctl","\u0001\t\u001f"]"#))
        #expect(try SnapshotRecordCoding.decode(line: line) == record)
    }

    @Test("a line written by another tool (other member order, CRLF) is read")
    func foreignLine() throws {
        let line = #"{"value":"v","headers":[],"key":null,"offset":5,"partition":0,"topic":"x","timestamp":12}"# + "\r"
        let record = try SnapshotRecordCoding.decode(line: line)
        #expect(record.topic == "x")
        #expect(record.offset == 5)
        #expect(record.value == Array("v".utf8))
        #expect(record.timestamp?.milliseconds == 12)
    }

    @Test(
        "invalid lines are SNAPSHOT_LINE_INVALID with the member's path",
        arguments: [
            ("not json", ""),
            ("[1]", ""),
            (#"{"partition":0,"offset":0,"value":"v"}"#, "/topic"),
            (#"{"topic":"t","partition":-1,"offset":0,"value":"v"}"#, "/partition"),
            (#"{"topic":"t","partition":0,"offset":"0","value":"v"}"#, "/offset"),
            (#"{"topic":"t","partition":0,"offset":0,"timestamp":"now","value":"v"}"#, "/timestamp"),
            (#"{"topic":"t","partition":0,"offset":0,"value":"v","value_b64":"dg=="}"#, "/value_b64"),
            (#"{"topic":"t","partition":0,"offset":0,"value_b64":"***"}"#, "/value_b64"),
            (#"{"topic":"t","partition":0,"offset":0,"key":5,"value":"v"}"#, "/key"),
            (#"{"topic":"t","partition":0,"offset":0,"headers":[["a"]],"value":"v"}"#, "/headers/0"),
            (#"{"topic":"t","partition":0,"offset":0,"headers":[["a",{"b64":"!"}]],"value":"v"}"#, "/headers/0/1"),
            (#"{"topic":"t","partition":0,"offset":0,"headers":{},"value":"v"}"#, "/headers"),
        ] as [(String, String)])
    func invalidLines(_ line: String, _ path: String) {
        do throws(SluiceError) {
            _ = try SnapshotRecordCoding.decode(line: line)
            Issue.record("expected SNAPSHOT_LINE_INVALID for \(line)")
        } catch {
            #expect(error.code == .snapshotLineInvalid)
            #expect(error.path == path)
        }
    }

    @Test("the file validator checks envelope lines and snapshot lines, reporting line numbers")
    func fileValidator() throws {
        let registry = try EnvelopeTestFixtures.registry()
        let validator = EnvelopeFileValidator(decoder: EnvelopeDecoder(registry: registry))
        let valid = String(decoding: EnvelopeTestFixtures.envelope(), as: UTF8.self)
        let badID = String(decoding: EnvelopeTestFixtures.envelope(["event_id": "bad id"]), as: UTF8.self)
        let snapshotValid = SnapshotRecordCoding.encode(
            Record(topic: "billing", partition: 0, offset: 1, value: Array(valid.utf8)))
        let snapshotBad = SnapshotRecordCoding.encode(
            Record(topic: "billing", partition: 0, offset: 2, value: [0xFF]))
        let contents = [valid, "", badID, snapshotValid, snapshotBad, "garbage"].joined(separator: "\n") + "\n"

        let summary = validator.validate(contents: Array(contents.utf8))
        #expect(summary.linesChecked == 5)
        #expect(summary.validCount == 2)
        #expect(summary.failures.map(\.lineNumber) == [3, 5, 6])
        #expect(summary.failures.map(\.error.code.rawValue) == ["EVENT_ID_INVALID", "ENVELOPE_NOT_JSON", "ENVELOPE_NOT_JSON"])
        #expect(summary.failures[1].topicPartitionOffset == "billing/0@2")
        #expect(summary.failureCountsByCode.first?.code == "ENVELOPE_NOT_JSON")

        let forcedSnapshot = validator.validate(contents: Array(valid.utf8), format: .snapshot)
        #expect(forcedSnapshot.failures.first?.error.code == .snapshotLineInvalid)

        // As replay reads them: a partition's offsets must increase down the file.
        let backwards = [1, 3, 2].map { offset in
            SnapshotRecordCoding.encode(Record(topic: "billing", partition: 0, offset: Offset(Int64(offset)), value: Array(valid.utf8)))
        } + [SnapshotRecordCoding.encode(Record(topic: "billing", partition: 1, offset: 0, value: Array(valid.utf8)))]
        let ordered = validator.validate(contents: Array(backwards.joined(separator: "\n").utf8))
        #expect(ordered.failures.map(\.lineNumber) == [3])
        #expect(ordered.failures.first?.error.code == .snapshotLineInvalid)
        #expect(ordered.failures.first?.error.message.contains("does not come after offset 3 on line 2") == true)
    }
}

@Suite("Snapshot files")
struct SnapshotReaderTests {
    static func line(_ topic: String, _ partition: Int32, _ offset: Int64) -> String {
        SnapshotRecordCoding.encode(Record(topic: topic, partition: partition, offset: Offset(offset), value: Array("v\(offset)".utf8)))
    }

    static func file(_ lines: [String]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-snapshot-\(UUID().uuidString).jsonl").path
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("Batches stream the file in order, partitions interleaved; blank lines skipped; validate counts the records")
    func streams() async throws {
        var lines: [String] = []
        for offset in Int64(0)..<2_500 { lines.append(Self.line("t", Int32(offset % 3), offset)) }
        lines.insert("", at: 7)
        let path = try Self.file(lines)
        var read: [Record] = []
        var batchSizes: [Int] = []
        for try await batch in SnapshotReader(path: path, batchSize: 1_000).batches() {
            read += batch
            batchSizes.append(batch.count)
        }
        #expect(read.map(\.offset.rawValue) == Array(0..<2_500))
        #expect(batchSizes == [1_000, 1_000, 500])
        #expect(try SnapshotReader(path: path).validate() == 2_500)
    }

    @Test("A partition whose offsets go back is refused with SNAPSHOT_LINE_INVALID and both line numbers, before any of it is replayed")
    func offsetsGoingBack() async throws {
        let path = try Self.file([
            Self.line("t", 0, 5), Self.line("t", 1, 0), Self.line("t", 0, 6), Self.line("u", 0, 1), Self.line("t", 0, 6),
        ])
        let error = #expect(throws: SluiceError.self) { try SnapshotReader(path: path).validate() }
        #expect(error?.code == .snapshotLineInvalid)
        #expect(error?.message.contains(":5: offset 6 of t[0] does not come after offset 6 on line 3") == true, "\(error?.message ?? "")")
        #expect(throws: SluiceError.self) { try SnapshotReader(path: path).readAll() }

        let unreadable = #expect(throws: SluiceError.self) { try SnapshotReader(path: path + ".missing").validate() }
        #expect(unreadable?.code == .snapshotUnreadable)
        let garbled = try Self.file([Self.line("t", 0, 1), "{\"topic\":"])
        let bad = #expect(throws: SluiceError.self) { try SnapshotReader(path: garbled).validate() }
        #expect(bad?.code == .snapshotLineInvalid && bad?.message.contains(":2:") == true)
    }
}
