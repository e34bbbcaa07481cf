import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceKafka
import Testing

/// `run --on-poison park` and `parked list|release` as a user runs them: a service process
/// against the embedded broker, on SQLite and PostgreSQL, killed between parking and Kafka's
/// commit, then the release after the fix.
@Suite("Parking: a poison key's later events wait in order, survive a SIGKILL, and are released after the fix", .serialized)
struct ParkingProcessTests {
    typealias Support = KafkaTestSupport
    typealias Fixture = ExactlyOnceTests.Fixture

    static let stepSchema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["account","seq"],
         "properties":{"account":{"type":"string"},"seq":{"type":"integer"}}}
        """#

    static let topic = "steps"
    static let refused = "k7#3,k22#5"
    static let events = 6

    /// k1…k50, events 1…6 each, keyed by account, a key's events on partition k % 4.
    static func produce(_ cluster: EmbeddedKafkaCluster) async throws -> [Int32: Int] {
        let producer = try Support.producer(cluster)
        var records: [ProducerRecord] = []
        var counts: [Int32: Int] = [:]
        for seq in 1...events {
            for k in 1...50 {
                let account = "k\(k)"
                let id = "\(account)-\(seq)"
                let value = Array(#"{"event_id":"\#(id)","event_type":"ledger.step_recorded","schema_version":1,"occurred_at":"2026-12-01T10:00:00Z","producer":"tests","correlation_id":"c-\#(id)","causation_id":"x-\#(id)","subject":"account:\#(account)","data":{"account":"\#(account)","seq":\#(seq)}}"#.utf8)
                records.append(ProducerRecord(topic: topic, partition: Int32(k % 4), key: Support.bytes(account), value: value))
                counts[Int32(k % 4), default: 0] += 1
            }
        }
        try await Support.produceAll(producer, records)
        try await producer.close()
        return counts
    }

    static func steps(_ store: SQLDedupeStore) async throws -> [String: [Int]] {
        let rows = try await store.withTransaction { transaction -> [SQLRow] in
            let exists = try await transaction.query(
                transaction.dialect == .sqlite
                    ? "SELECT count(*) AS n FROM sqlite_master WHERE name = 'steps'"
                    : "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'steps'")[0]["n"]?.int ?? 0
            return exists > 0 ? try await transaction.query("SELECT account, seqs FROM steps") : []
        }
        return Dictionary(uniqueKeysWithValues: rows.map { row in
            (row["account"]?.string ?? "?", (row["seqs"]?.string ?? "").split(separator: ",").compactMap { Int($0) })
        })
    }

    /// Runs `parked ARGUMENTS…` of the service against the fixture's store; returns its exit
    /// status and standard output.
    static func parked(_ fixture: Fixture, _ arguments: [String], environment extra: [String: String] = [:]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("sluice-test-balance-consumer")
        process.arguments = ["parked"] + arguments + [
            "--group", "steps", "--database", fixture.database, "--schemas", fixture.directory.appendingPathComponent("EventSchemas").path,
        ]
        var environment = ProcessInfo.processInfo.environment
        environment.merge(extra) { _, new in new }
        process.environment = environment
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("k7's third event fails for good: k7's events 4…6 are parked, every other key flows in order, a SIGKILL after parking repeats and parks nothing twice, `parked show` and a replay see it, `parked release` after the fix runs k7 in order, `parked discard` drops another key",
          arguments: ExactlyOnceTests.DatabaseKind.enabled)
    func parkSurviveAndRelease(database: ExactlyOnceTests.DatabaseKind) async throws {
        let cluster = try Support.cluster(topics: [Self.topic: 4, "\(Self.topic).DLT": 1])
        let counts = try await Self.produce(cluster)
        let fixture = try await Fixture(database: database)
        let schemas = fixture.directory.appendingPathComponent("EventSchemas/ledger.step_recorded")
        try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
        try Self.stepSchema.write(to: schemas.appendingPathComponent("v1.schema.json"), atomically: true, encoding: .utf8)
        let store = try await fixture.store()
        let parking = ["--on-poison", "park"]

        // k22's fifth event is refused too (its key is discarded at the end). Killed right after
        // the store commit that brought the parked records to two (a head parked before it): the
        // store is ahead of Kafka's commit.
        let crashing = try fixture.start(
            cluster, topic: Self.topic, group: "steps", name: "crashing",
            environment: ["SLUICE_TEST_REFUSE": Self.refused, "SLUICE_TEST_CRASH_WHEN_PARKED": "2"], arguments: parking)
        crashing.waitUntilExit()
        #expect(crashing.terminationReason == .uncaughtSignal)
        #expect(try fixture.log("crashing").contains("crashing after the store commit that parked record"))

        // The restart names the policy per topic (the others would dead-letter only).
        let restarted = try fixture.start(
            cluster, topic: Self.topic, group: "steps", name: "restarted", environment: ["SLUICE_TEST_REFUSE": Self.refused],
            logLevel: "info", arguments: ["--on-poison", "dead-letter", "--on-poison", "\(Self.topic)=park"])
        let partitions = (0..<4).map { TopicPartition(topic: Self.topic, partition: Int32($0)) }
        try await Support.eventually("every partition's position at its end", timeout: .seconds(90)) {
            let stored = try await store.storedOffsets(group: "steps", partitions: partitions)
            return partitions.allSatisfy { stored[$0]?.rawValue == Int64(counts[$0.partition] ?? 0) }
        }
        // Kafka's committed position reaches each partition's end too (records parked count as
        // durable), also where the crash left Kafka behind the store and no record followed.
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "steps"), logger: Support.logger)
        try await Support.eventually("Kafka's commits at every partition's end", timeout: .seconds(60)) {
            let committed = try await probe.committedOffsets(for: partitions)
            return partitions.allSatisfy { committed[$0]?.rawValue == Int64(counts[$0.partition] ?? 0) }
        }
        try await probe.close()
        ExactlyOnceTests.stop(restarted)
        #expect(restarted.terminationStatus == 0)

        var steps = try await Self.steps(store)
        #expect(steps["k7"] == [1, 2], "nothing of k7 after its failure was handled, across the crash")
        #expect(steps["k22"] == [1, 2, 3, 4])
        for k in 1...50 where k != 7 && k != 22 { #expect(steps["k\(k)"] == Array(1...Self.events), "k\(k) flows in order") }

        let list = try Self.parked(fixture, ["list"])
        #expect(list.status == 0)
        let lines = list.output.split(separator: "\n")
        #expect(lines.count == 2, "parked list: \(list.output)")
        #expect(lines.contains { $0.hasPrefix("steps k7 records=\(Self.events - 2) oldest=3:") }, "parked list: \(list.output)")
        #expect(lines.contains { $0.hasPrefix("steps k22 records=2 oldest=2:") }, "parked list: \(list.output)")
        #expect(lines.allSatisfy { $0.contains("code=STEP_REFUSED") })
        let stamp = try Regex(#"parked_at=\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z"#)
        #expect(lines.allSatisfy { $0.contains(stamp) }, "times in UTC with their zone: \(list.output)")

        // show: the failure, then the waiting records head first; --snapshot: all their bytes.
        let shown = try Self.parked(fixture, ["show", "k7"])
        #expect(shown.output.contains("failure: STEP_REFUSED in handler steps: step 3 of k7 refused"), "\(shown.output)")
        let shownIDs = shown.output.split(separator: "\n").compactMap { line in
            line.split(separator: " ").first { $0.hasPrefix("k7-") }.map(String.init)
        }
        #expect(shownIDs == (3...Self.events).map { "k7-\($0)" }, "\(shown.output)")
        let snapshot = try Self.parked(fixture, ["show", "k7", "--snapshot"]).output.split(separator: "\n")
        let decoded = try snapshot.map { try SnapshotRecordCoding.decode(line: String($0)) }
        #expect(decoded.count == Self.events - 2)
        #expect(decoded.allSatisfy { $0.key == Support.bytes("k7") && $0.topic == Self.topic && $0.partition == 3 })

        // The only dead letters are the two refused events, marked parked.
        let dlt = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await dlt.assign([TopicPartition(topic: "\(Self.topic).DLT", partition: 0): .beginning])
        let letters = try await Support.collect(from: dlt, what: "the dead letters") { $0.count >= 2 }
        try await Task.sleep(for: .milliseconds(500))
        try await dlt.close()
        #expect(letters.count == 2)
        #expect(letters.allSatisfy { $0.header(DeadLetterHeader.parked) == Array("true".utf8) })
        #expect(Set(letters.compactMap { $0.header(DeadLetterHeader.eventID).map { String(decoding: $0, as: UTF8.self) } }) == ["k7-3", "k22-5"])

        // A replay respects parking: k7's records are neither handled nor appended, and listed.
        let replay = Process()
        replay.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("sluice-test-balance-consumer")
        replay.arguments = [
            "replay", "--bootstrap-servers", cluster.bootstrapServers, "--topic", Self.topic, "--group", "steps",
            "--database", fixture.database, "--schemas", fixture.directory.appendingPathComponent("EventSchemas").path,
        ]
        let replayOutput = Pipe()
        replay.standardOutput = replayOutput
        replay.standardError = FileHandle.nullDevice
        try replay.run()
        let replayed = String(decoding: replayOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        replay.waitUntilExit()
        #expect(replay.terminationStatus == 0, "\(replayed)")
        #expect(replayed.contains("parked key skipped: \(Self.topic) k7: \(Self.events) records"), "\(replayed)")
        #expect(replayed.contains("parked key skipped: \(Self.topic) k22: \(Self.events) records"), "\(replayed)")
        #expect(try Self.parked(fixture, ["list"]).output.contains("records=\(Self.events - 2) "), "the replay appended nothing")

        // Still broken: the release stops at the head, says why, and the key stays parked.
        let refused = try Self.parked(fixture, ["release", "k7"], environment: ["SLUICE_TEST_REFUSE": Self.refused])
        #expect(refused.status == 1)
        #expect(refused.output.contains("still parked steps k7 from 3:"), "\(refused.output)")
        #expect(refused.output.contains("STEP_REFUSED"))

        // The fix (the handler without the refusal): k7's events 3…6 run in order.
        let dryRun = try Self.parked(fixture, ["release", "--all", "--dry-run"])
        #expect(dryRun.output.contains("would release steps k7: \(Self.events - 2) records"))
        #expect(dryRun.output.contains("would release steps k22: 2 records"))
        let released = try Self.parked(fixture, ["release", "k7"])
        #expect(released.status == 0, "\(released.output)")
        #expect(released.output.contains("released steps k7: \(Self.events - 2) handled"))
        steps = try await Self.steps(store)
        #expect(steps["k7"] == Array(1...Self.events))
        #expect(try Self.parked(fixture, ["list"]).output.hasPrefix("steps k22 "), "k22 is still parked")

        // k22 is given up: its records are dropped unhandled, and who did it is recorded.
        let discarded = try Self.parked(fixture, ["discard", "k22", "--by", "tester"])
        #expect(discarded.status == 0)
        #expect(discarded.output.contains("discarded steps k22: 2 records dropped (by tester)"), "\(discarded.output)")
        #expect(try Self.parked(fixture, ["list"]).output.isEmpty)
        #expect(try await Self.steps(store)["k22"] == [1, 2, 3, 4])
        let discards = try await store.withTransaction {
            try await $0.query("SELECT topic, records, failure_code, discarded_by FROM sluice_parked_discards")
        }
        #expect(discards.count == 1)
        #expect(discards.first?["records"]?.int == 2 && discards.first?["discarded_by"]?.string == "tester")
        #expect(discards.first?["failure_code"]?.string == "STEP_REFUSED")
        #expect(try Self.parked(fixture, ["release", "k7"]).status != 0, "a key that is not parked is refused")
        await store.close()
    }
}
