import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceKafka
import SluiceTesting
import Synchronization
import Testing

/// Replays of topic ranges through the real pipeline and a SQLite store.
@Suite("Replay: ranges, dedupe modes, dry runs, checkpoints, and the live group left alone", .serialized)
struct ReplayTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    /// Every handler call: event id and whether the handler was told it runs in a replay.
    final class Calls: Sendable {
        private let calls = Mutex<[(id: String, isReplay: Bool)]>([])
        func append(_ id: String, _ isReplay: Bool) { calls.withLock { $0.append((id, isReplay)) } }
        var all: [(id: String, isReplay: Bool)] { calls.withLock { $0 } }
    }

    static let migrations = [StoreMigration(id: "items-1", sql: "CREATE TABLE items (event_id TEXT NOT NULL, seq BIGINT NOT NULL)")]

    static func router(_ calls: Calls) -> EventRouter<SQLDedupeStore.Transaction> {
        var router = EventRouter<SQLDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "items") { event, context in
            try await context.transaction.execute("INSERT INTO items (event_id, seq) VALUES (?, ?)", [.text(event.eventID), SQLValue(event.payload.seq)])
            calls.append(event.eventID, context.isReplay)
        }
        return router
    }

    static func store() async throws -> SQLDedupeStore {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-replay-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        return try await SQLDedupeStore.open(
            .sqlite(path: directory.appendingPathComponent("store.sqlite").path), migrations: migrations, logger: Support.logger)
    }

    static let base: Int64 = 1_795_000_000_000

    /// `count` events per partition, event `p<partition>-<seq>` stamped `base + seq` seconds.
    static func produce(_ cluster: EmbeddedKafkaCluster, topic: String, partitions: Int, count: Int) async throws {
        let producer = try Support.producer(cluster)
        var records: [ProducerRecord] = []
        for partition in 0..<partitions {
            for seq in 0..<count {
                var record = ProducerRecord(
                    topic: topic, partition: Int32(partition), key: Support.bytes("k\(seq)"),
                    value: Pipeline.envelope(id: "p\(partition)-\(seq)", data: #"{"key":"k","seq":\#(seq)}"#))
                record.timestampMilliseconds = base + Int64(seq) * 1_000
                records.append(record)
            }
        }
        _ = try await Support.produceAll(producer, records)
        try await producer.close()
    }

    static func replay(
        _ cluster: EmbeddedKafkaCluster, topics: [String], plan: ReplayPlan, store: SQLDedupeStore, calls: Calls,
        dedupe: EventPipeline<SQLDedupeStore>.DedupeMode = .respect, dryRun: Bool = false, sink: RecordingDeadLetterSink = RecordingDeadLetterSink(),
        checkpoint: String? = nil
    ) async throws -> ReplaySummary {
        let reader = try await KafkaRangeReader.open(
            bootstrapServers: [cluster.bootstrapServers], topics: topics, plan: plan, logger: Support.logger)
        let registry = try Pipeline.registry()
        let pipeline = EventPipeline(
            configuration: ReplayRunner<SQLDedupeStore>.replayConfiguration(group: "live", dedupe: dedupe, dryRun: dryRun),
            decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router(calls), store: store, deadLetterSink: sink, logger: Support.logger)
        var configuration = ReplayRunner<SQLDedupeStore>.Configuration()
        configuration.checkpointPath = checkpoint
        let summary = await ReplayRunner(pipeline: pipeline, configuration: configuration, logger: Support.logger)
            .run(reader.batches, ends: reader.ends)
        await reader.close()
        return summary
    }

    static func date(seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        return formatter.string(from: Date(timeIntervalSince1970: Double(base / 1_000 + seconds)))
    }

    @Test("A replay by offset range handles exactly the records in range, in that partition only")
    func offsetRange() async throws {
        let cluster = try Support.cluster(topics: ["history": 2])
        try await Self.produce(cluster, topic: "history", partitions: 2, count: 50)
        let calls = Calls()
        let plan = try ReplayPlan(source: .topics(["history"]), fromOffsets: ["0:10"], toOffsets: ["0:19"])
        let summary = try await Self.replay(cluster, topics: ["history"], plan: plan, store: try await Self.store(), calls: calls)
        #expect(calls.all.map(\.id) == (10...19).map { "p0-\($0)" })
        #expect(summary.handled == 10 && summary.read == 10 && summary.isSuccess)
        let partition = TopicPartition(topic: "history", partition: 0)
        #expect(summary.partitions[partition]?.first == 10 && summary.partitions[partition]?.last == 19)
    }

    @Test("A replay by timestamp range handles exactly the records stamped inside it, in every partition")
    func timestampRange() async throws {
        let cluster = try Support.cluster(topics: ["timed": 2])
        try await Self.produce(cluster, topic: "timed", partitions: 2, count: 50)
        let calls = Calls()
        let plan = try ReplayPlan(source: .topics(["timed"]), fromTimestamp: Self.date(seconds: 20), toTimestamp: Self.date(seconds: 29))
        let summary = try await Self.replay(cluster, topics: ["timed"], plan: plan, store: try await Self.store(), calls: calls)
        #expect(Set(calls.all.map(\.id)) == Set((0..<2).flatMap { partition in (20...29).map { "p\(partition)-\($0)" } }))
        #expect(calls.all.count == 20 && summary.handled == 20)
    }

    @Test("After a live run, a respect replay calls no handler and counts every record as a duplicate; a reprocess replay calls every handler with isReplay; the live group's commits do not move")
    func dedupeModesBesideLiveGroup() async throws {
        let cluster = try Support.cluster(topics: ["orders": 2])
        try await Self.produce(cluster, topic: "orders", partitions: 2, count: 50)
        let store = try await Self.store()
        let calls = Calls()
        let deadLetters = try Support.producer(cluster)
        let live = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "live", topics: ["orders"], store: store, router: Self.router(calls), deadLetterProducer: deadLetters))
        try await Support.eventually("the live run handled everything", timeout: .seconds(60)) { calls.all.count >= 100 }
        let partitions = [TopicPartition(topic: "orders", partition: 0), TopicPartition(topic: "orders", partition: 1)]
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "live"), logger: Support.logger)
        try await Support.eventually("the live group committed", timeout: .seconds(30)) {
            try await probe.committedOffsets(for: partitions).values.allSatisfy { $0 == 50 }
        }
        #expect(calls.all.allSatisfy { !$0.isReplay })

        let plan = ReplayPlan(source: .topics(["orders"]))
        let respect = try await Self.replay(cluster, topics: ["orders"], plan: plan, store: store, calls: calls)
        #expect(respect.read == 100 && respect.duplicates == 100 && respect.handled == 0 && respect.isSuccess)
        #expect(calls.all.count == 100, "no handler ran")

        let reprocess = try await Self.replay(cluster, topics: ["orders"], plan: plan, store: store, calls: calls, dedupe: .reprocess)
        #expect(reprocess.handled == 100 && reprocess.duplicates == 0)
        #expect(calls.all.count == 200 && calls.all.suffix(100).allSatisfy(\.isReplay))
        let counts = try await store.withTransaction { try await $0.query("SELECT DISTINCT process_count FROM sluice_processed_events") }
        #expect(counts.map { $0[0].int } == [2], "reprocessing updated the records")

        try await Task.sleep(for: .seconds(1))  // the live consumer's commit interval passes
        #expect(try await probe.committedOffsets(for: partitions) == [partitions[0]: 50, partitions[1]: 50])
        try await live.stop()
        try await probe.close()
        try await deadLetters.close()
    }

    @Test("--dry-run decodes, validates and routes but calls no handler and writes no dead letter; its summary counts each error code")
    func dryRunCounts() async throws {
        let cluster = try Support.cluster(topics: ["mixed": 1])
        let producer = try Support.producer(cluster)
        var values: [[UInt8]] = (0..<5).map { Pipeline.envelope(id: "good-\($0)", data: #"{"key":"k","seq":\#($0)}"#) }
        values += [Support.bytes("not json"), Support.bytes("{\"half\":")]
        values.append(Pipeline.envelope(id: "v9", version: 9, data: #"{"key":"k","seq":1}"#))
        values += (0..<3).map { Pipeline.envelope(id: "bad-\($0)", data: #"{"key":"k","seq":-1}"#) }
        values.append(Pipeline.envelope(id: "other", type: "orders.order_cancelled", data: "{}"))
        _ = try await Support.produceAll(producer, values.map { ProducerRecord(topic: "mixed", partition: 0, value: $0) })
        try await producer.close()

        let calls = Calls()
        let sink = RecordingDeadLetterSink()
        let summary = try await Self.replay(
            cluster, topics: ["mixed"], plan: ReplayPlan(source: .topics(["mixed"])), store: try await Self.store(), calls: calls,
            dryRun: true, sink: sink)
        #expect(calls.all.isEmpty)
        #expect(sink.records.isEmpty)
        #expect(summary.read == 12 && summary.handled == 5)
        #expect(summary.deadLetteredByCode == [
            "ENVELOPE_NOT_JSON": 2, "SCHEMA_VERSION_UNSUPPORTED": 1, "PAYLOAD_SCHEMA_VIOLATION": 3, "EVENT_TYPE_UNKNOWN": 1,
        ])
        #expect(!summary.isSuccess)
        #expect(summary.rendered.contains("\n  would be dead-lettered PAYLOAD_SCHEMA_VIOLATION: 3\n"))
        #expect(summary.rendered.hasSuffix("result: WOULD DEAD-LETTER 7 (dry run, nothing written)"), "\(summary.rendered)")
    }

    @Test("A source that fails (a contradicted timestamp lookup) fails the replay: the records before it have outcomes, and the summary names the error")
    func sourceFailureInSummary() async throws {
        let records = (0..<3).map { seq in
            Record(topic: "t", partition: 0, offset: Offset(Int64(seq)), value: Pipeline.envelope(id: "f\(seq)", data: #"{"key":"k","seq":\#(seq)}"#))
        }
        let source = AsyncThrowingStream<[Record], any Error> { continuation in
            continuation.yield(records)
            continuation.finish(throwing: SluiceError(code: .replayTimestampLookupContradicted, message: "t[0]: the record at 7 is stamped …"))
        }
        let registry = try Pipeline.registry()
        let calls = Calls()
        let pipeline = EventPipeline(
            configuration: ReplayRunner<SQLDedupeStore>.replayConfiguration(group: "live"), decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: Self.router(calls), store: try await Self.store(),
            deadLetterSink: RecordingDeadLetterSink(), logger: Support.logger)
        let summary = await ReplayRunner(pipeline: pipeline, logger: Support.logger).run(source)
        #expect(summary.handled == 3 && calls.all.count == 3)
        #expect(summary.failure?.hasPrefix("REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED: t[0]") == true, "\(String(describing: summary.failure))")
        #expect(!summary.isSuccess)
        #expect(summary.rendered.contains("\n  stopped by an error: REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED: t[0]"), "\(summary.rendered)")
    }

    @Test("A checkpoint lets an interrupted replay resume: records below it are not replayed again")
    func checkpointResume() async throws {
        let cluster = try Support.cluster(topics: ["resumed": 1])
        try await Self.produce(cluster, topic: "resumed", partitions: 1, count: 40)
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-checkpoint-\(UUID().uuidString).json").path
        try ReplayCheckpoint(positions: [TopicPartition(topic: "resumed", partition: 0): 30]).save(to: path)
        let calls = Calls()
        let summary = try await Self.replay(
            cluster, topics: ["resumed"], plan: ReplayPlan(source: .topics(["resumed"])), store: try await Self.store(), calls: calls,
            checkpoint: path)
        #expect(calls.all.map(\.id) == (30..<40).map { "p0-\($0)" })
        #expect(summary.read == 10)
        #expect(try ReplayCheckpoint.load(from: path).positions[TopicPartition(topic: "resumed", partition: 0)] == 40)
    }

    @Test("The replay command: progress on stderr, the summary on stdout, exit status 1 when records would be dead-lettered or none matched (unless --allow-empty)")
    func replayCommand() async throws {
        let cluster = try Support.cluster(topics: ["cli": 1])
        let producer = try Support.producer(cluster)
        let good = (0..<3).map { Array(#"{"event_id":"g\#($0)","event_type":"ledger.amount_posted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c\#($0)","causation_id":"x\#($0)","subject":"account:a","data":{"account":"a","amount":5}}"#.utf8) }
        _ = try await Support.produceAll(producer, (good + [Support.bytes("garbage")]).map { ProducerRecord(topic: "cli", partition: 0, value: $0) })
        try await producer.close()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-replay-cli-\(UUID().uuidString)")
        let schemas = directory.appendingPathComponent("EventSchemas/ledger.amount_posted")
        try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
        try ExactlyOnceTests.schema.write(to: schemas.appendingPathComponent("v1.schema.json"), atomically: true, encoding: .utf8)

        func run(_ extra: [String]) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sluice-test-balance-consumer")
            process.arguments = [
                "replay", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "cli", "--group", "balances",
                "--database", directory.appendingPathComponent("store.sqlite").path,
                "--schemas", directory.appendingPathComponent("EventSchemas").path,
            ] + extra
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            let data = output.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: data, as: UTF8.self))
        }
        let dry = try run(["--dry-run"])
        #expect(dry.status == 1)
        #expect(dry.output.contains("3 would be handled"), "\(dry.output)")
        #expect(dry.output.contains("would be dead-lettered ENVELOPE_NOT_JSON: 1"))
        #expect(dry.output.contains("result: WOULD DEAD-LETTER 1 (dry run, nothing written)"))
        #expect(!dry.output.contains("FAILED"), "nothing was written, nothing failed")
        let good3 = try run(["--to-offset", "0:2"])
        #expect(good3.status == 0, "\(good3.output)")
        #expect(good3.output.contains("3 handled") && good3.output.contains("result: OK"))
        let again = try run(["--to-offset", "0:2"])
        #expect(again.output.contains("0 handled") && again.output.contains("3 skipped as duplicates"))
        // A window after every record: nothing matches, which fails unless --allow-empty.
        let window = ["--from-timestamp", "2031-01-01T00:00:00Z", "--to-timestamp", "2031-01-02T00:00:00Z"]
        let empty = try run(window)
        #expect(empty.status == 1, "\(empty.output)")
        #expect(empty.output.contains("no record matched the range") && empty.output.contains("result: EMPTY"), "\(empty.output)")
        let allowed = try run(window + ["--allow-empty"])
        #expect(allowed.status == 0, "\(allowed.output)")
        #expect(allowed.output.contains("no record matched the range") && allowed.output.hasSuffix("result: OK\n"), "\(allowed.output)")
    }

    @Test("replay --snapshot checks the whole file first: a partition going back in offsets stops it with the line number and nothing handled")
    func snapshotCheckedFirst() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-replay-snapshot-\(UUID().uuidString)")
        let schemas = directory.appendingPathComponent("EventSchemas/ledger.amount_posted")
        try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
        try ExactlyOnceTests.schema.write(to: schemas.appendingPathComponent("v1.schema.json"), atomically: true, encoding: .utf8)
        func line(_ offset: Int64, _ id: String) -> String {
            let value = #"{"event_id":"\#(id)","event_type":"ledger.amount_posted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c","causation_id":"x","subject":"account:a","data":{"account":"a","amount":5}}"#
            return SnapshotRecordCoding.encode(Record(topic: "ledger", partition: 0, offset: Offset(offset), value: Array(value.utf8)))
        }
        func replay(_ lines: [String]) throws -> (status: Int32, output: String, errors: String) {
            let snapshot = directory.appendingPathComponent("snapshot-\(UUID().uuidString).jsonl")
            try lines.joined(separator: "\n").write(to: snapshot, atomically: true, encoding: .utf8)
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sluice-test-balance-consumer")
            process.arguments = [
                "replay", "--snapshot", snapshot.path, "--group", "balances",
                "--database", directory.appendingPathComponent("store.sqlite").path,
                "--schemas", directory.appendingPathComponent("EventSchemas").path,
            ]
            let output = Pipe()
            let errors = Pipe()
            process.standardOutput = output
            process.standardError = errors
            try process.run()
            let outputData = output.fileHandleForReading.readDataToEndOfFile()
            let errorData = errors.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (process.terminationStatus, String(decoding: outputData, as: UTF8.self), String(decoding: errorData, as: UTF8.self))
        }
        let backwards = try replay([line(0, "s0"), line(1, "s1"), line(2, "s2"), line(1, "s1-again")])
        #expect(backwards.status != 0)
        #expect(backwards.errors.contains("SNAPSHOT_LINE_INVALID") && backwards.errors.contains(":4: offset 1 of ledger[0]"), "\(backwards.errors)")
        #expect(!backwards.output.contains("replay finished"))
        // Nothing of the refused file was handled: the same three events are all new to the store.
        let fixed = try replay([line(0, "s0"), line(1, "s1"), line(2, "s2")])
        #expect(fixed.status == 0, "\(fixed.errors)")
        #expect(fixed.output.contains("(3 records)") && fixed.output.contains("3 handled"), "\(fixed.output)")
    }
}
