import Foundation
import Logging
import Sluice
import SluiceKafka
import SluiceKafkaTesting
import SluiceTesting
import Synchronization
import Testing

/// `sluice export`, `produce`, `dlq` and `lag`, run as the operator would: the `sluice`
/// executable against an embedded cluster.
@Suite("The operator tool: export, produce, dead letters, lag", .serialized)
struct OperatorToolTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    @discardableResult
    static func sluice(_ arguments: [String], input: Data? = nil) throws -> (status: Int32, output: String, errors: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sluice")
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        let stdin = Pipe()
        process.standardInput = stdin
        try process.run()
        if let input { stdin.fileHandleForWriting.write(input) }
        try stdin.fileHandleForWriting.close()
        let out = output.fileHandleForReading.readDataToEndOfFile()
        let err = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }

    static func temporaryFile(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("sluice-op-\(UUID().uuidString)-\(name)").path
    }

    @Test("export → produce to a fresh topic → export: the records are identical (keys, headers, values, partitions, timestamps)")
    func exportProduceRoundTrip() async throws {
        let cluster = try Support.cluster(topics: ["source": 3, "copy": 3])
        let producer = try Support.producer(cluster)
        var records: [ProducerRecord] = []
        for index in 0..<300 {
            var headers = [RecordHeader(name: "trace", string: "t\(index)"), RecordHeader(name: "trace", string: "again")]
            if index % 3 == 0 { headers.append(RecordHeader(name: "bin", value: [0xFF, 0x00, 0xC3])) }
            if index % 5 == 0 { headers.append(RecordHeader(name: "nothing", value: nil)) }
            var record = ProducerRecord(
                topic: "source", partition: Int32(index % 3),
                key: index % 4 == 0 ? nil : (index % 4 == 1 ? [0xDE, 0xAD, UInt8(index % 256)] : Support.bytes("key-\(index)")),
                value: index % 7 == 0 ? nil : Support.bytes("{\"n\":\(index),\"text\":\"é\\n\"}"), headers: headers)
            record.timestampMilliseconds = 1_795_000_000_000 + Int64(index)
            records.append(record)
        }
        _ = try await Support.produceAll(producer, records)
        try await producer.close()

        let first = Self.temporaryFile("first.jsonl")
        let second = Self.temporaryFile("second.jsonl")
        let export = try Self.sluice(["export", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "source", "--output", first])
        #expect(export.status == 0, "\(export.errors)")
        #expect(export.errors.contains("exported 300 records"))
        let produce = try Self.sluice([
            "produce", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "copy", "--input", first, "--format", "snapshot", "--keep-partitions",
        ])
        #expect(produce.status == 0, "\(produce.errors)")
        #expect(try Self.sluice(["export", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "copy", "--output", second]).status == 0)

        let original = try SnapshotReader(path: first).readAll()
        let copied = try SnapshotReader(path: second).readAll()
        #expect(original.count == 300)
        func comparable(_ record: Record) -> Record {
            var record = record
            record.topic = "-"
            return record
        }
        #expect(original.map(comparable) == copied.map(comparable))
        #expect(original.map(\.partition) == original.map(\.partition).sorted(), "partition, then offset order")
    }

    @Test("produce checks every line first: a bad line stops it with its line number and nothing produced")
    func produceRefusesBadInput() async throws {
        let cluster = try Support.cluster(topics: ["strict": 1])
        let lines = [
            String(decoding: Pipeline.envelope(id: "ok-1", data: #"{"key":"k","seq":1}"#), as: UTF8.self),
            "{\"no_id\":true}",
        ].joined(separator: "\n")
        let result = try Self.sluice(["produce", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "strict"], input: Data(lines.utf8))
        #expect(result.status != 0)
        #expect(result.errors.contains(":2:") && result.errors.contains("ENVELOPE_FIELD_MISSING"))
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        #expect(try await consumer.watermarks(for: TopicPartition(topic: "strict", partition: 0)).high == 0, "nothing produced")
        try await consumer.close()
    }

    @Test("A record dead-lettered for an unknown schema version is re-driven once the schema is registered, and then handled; re-drive by code touches only matching records")
    func redriveAfterSchemaRegistered() async throws {
        let cluster = try Support.cluster(topics: ["payments": 1, "payments.DLT": 1])
        let producer = try Support.producer(cluster)
        let v2 = Pipeline.envelope(id: "pay-v2", version: 2, data: #"{"key":"k","seq":7}"#)
        _ = try await Support.produceAll(producer, [
            ProducerRecord(topic: "payments", partition: 0, key: Support.bytes("order-7"), value: Pipeline.envelope(id: "pay-1", data: #"{"key":"k","seq":1}"#)),
            ProducerRecord(topic: "payments", partition: 0, key: Support.bytes("order-7"), value: v2, headers: [RecordHeader(name: "app", string: "kept")]),
            ProducerRecord(topic: "payments", partition: 0, key: Support.bytes("order-8"), value: Support.bytes("not json")),
        ])

        // The service knows only v1: the v2 record and the garbage go to the DLT.
        let handled = Mutex<[String]>([])
        func router() -> EventRouter<InMemoryDedupeStore.Transaction> {
            var router = EventRouter<InMemoryDedupeStore.Transaction>()
            router.on("orders.item_added", as: Pipeline.Item.self, handler: "h") { event, _ in handled.withLock { $0.append(event.eventID) } }
            return router
        }
        let store = InMemoryDedupeStore()
        let first = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "payments", topics: ["payments"], store: store, router: router(), deadLetterProducer: producer))
        let dlqConsumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await dlqConsumer.assign([TopicPartition(topic: "payments.DLT", partition: 0): .beginning])
        _ = try await Support.collect(from: dlqConsumer, what: "two dead letters") { $0.count >= 2 }
        try await dlqConsumer.close()
        try await first.stop()
        #expect(handled.withLock { $0 } == ["pay-1"])

        let list = try Self.sluice(["dlq", "list", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "payments.DLT"])
        #expect(list.output.contains("SCHEMA_VERSION_UNSUPPORTED") && list.output.contains("ENVELOPE_NOT_JSON") && list.output.contains("2 dead letter(s)"))
        let show = try Self.sluice(["dlq", "show", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "payments.DLT", "--partition", "0", "--offset", "0"])
        #expect(show.output.contains("sluice.original.offset: 1") && show.output.contains("app: kept"))

        let dry = try Self.sluice([
            "dlq", "redrive", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "payments.DLT", "--code", "SCHEMA_VERSION_UNSUPPORTED", "--dry-run",
        ])
        #expect(dry.output.contains("would re-drive 1 record(s)"))
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        #expect(try await probe.watermarks(for: TopicPartition(topic: "payments", partition: 0)).high == 3, "a dry run produces nothing")

        // v2 is registered now; the service restarts with it, then the operator re-drives by code.
        var registry = try Pipeline.registry()
        try registry.register(eventType: "orders.item_added", version: 2, schemaText: Pipeline.itemAddedSchema)
        var configuration = EventConsumer<InMemoryDedupeStore>.Configuration(
            consumer: Support.consumerConfiguration(cluster, group: "payments"), topics: ["payments"])
        configuration.commitInterval = .milliseconds(200)
        let second = Pipeline.Running(try EventConsumer(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router(), store: store, deadLetterSink: KafkaDeadLetterSink(producer: producer), logger: Support.logger))
        let redrive = try Self.sluice([
            "dlq", "redrive", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "payments.DLT", "--code", "SCHEMA_VERSION_UNSUPPORTED",
        ])
        #expect(redrive.status == 0 && redrive.output.contains("re-drove 1 record(s); 1 left"))
        try await Support.eventually("the re-driven record handled", timeout: .seconds(60)) { handled.withLock { $0.contains("pay-v2") } }
        try await second.stop()

        try await probe.assign([TopicPartition(topic: "payments", partition: 0): Offset(3)])
        let redriven = try await Support.collect(from: probe, what: "the re-driven record") { !$0.isEmpty }
        #expect(redriven.count == 1)
        #expect(redriven[0].key == Support.bytes("order-7") && redriven[0].value == v2)
        #expect(redriven[0].headers.map(\.name) == ["app", "sluice.redrive.count"])
        #expect(redriven[0].header("sluice.redrive.count") == Support.bytes("1"))
        try await probe.close()
        try await producer.close()
    }

    @Test("lag shows a group's committed offsets, the high watermarks and the difference")
    func lag() async throws {
        let cluster = try Support.cluster(topics: ["lagging": 2])
        let producer = try Support.producer(cluster)
        _ = try await Support.produceAll(producer, (0..<30).map { ProducerRecord(topic: "lagging", partition: Int32($0 % 2), value: Support.bytes("v\($0)")) })
        try await producer.close()
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "laggards"), logger: Support.logger)
        try await consumer.assign([TopicPartition(topic: "lagging", partition: 0): .beginning, TopicPartition(topic: "lagging", partition: 1): .beginning])
        try await consumer.commit([TopicPartition(topic: "lagging", partition: 0): 10, TopicPartition(topic: "lagging", partition: 1): 15])
        try await consumer.close()
        let result = try Self.sluice(["lag", "--bootstrap-servers", cluster.bootstrapServers, "--group", "laggards", "--topic", "lagging"])
        #expect(result.output.contains("lagging[0]: committed 10, high watermark 15, lag 5"))
        #expect(result.output.contains("lagging[1]: committed 15, high watermark 15, lag 0"))
        #expect(result.output.contains("total lag 5"))
    }

    @Test("lag flags a committed offset above the high watermark (a truncated or recreated topic) as lag ?, with a warning, and leaves it out of the total")
    func lagPastHighWatermark() async throws {
        let cluster = try Support.cluster(topics: ["recreated": 2])
        let producer = try Support.producer(cluster)
        _ = try await Support.produceAll(producer, (0..<10).map { ProducerRecord(topic: "recreated", partition: Int32($0 % 2), value: Support.bytes("v\($0)")) })
        try await producer.close()
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "before"), logger: Support.logger)
        try await consumer.assign([TopicPartition(topic: "recreated", partition: 0): .beginning, TopicPartition(topic: "recreated", partition: 1): .beginning])
        // What the group committed before the topic was recreated: far beyond its new end (5).
        try await consumer.commit([TopicPartition(topic: "recreated", partition: 0): 120, TopicPartition(topic: "recreated", partition: 1): 3])
        try await consumer.close()
        let result = try Self.sluice(["lag", "--bootstrap-servers", cluster.bootstrapServers, "--group", "before", "--topic", "recreated"])
        #expect(result.status == 0, "\(result.errors)")
        #expect(result.output.contains("recreated[0]: committed 120, high watermark 5, lag ? (committed offset is past the high watermark)"), "\(result.output)")
        #expect(!result.output.contains("recreated[0]: committed 120, high watermark 5, lag 0"))
        #expect(result.output.contains("recreated[1]: committed 3, high watermark 5, lag 2"))
        #expect(result.output.contains("total lag 2 over 2 partition(s) (1 with lag ? not counted)"), "\(result.output)")
        #expect(result.errors.contains("warning: group before committed offsets past the high watermark of recreated[0]"), "\(result.errors)")
        #expect(result.errors.contains("truncated") && result.errors.contains("recreated"))
    }

    @Test("export of a range that matches no record says so and exits 1, unless --allow-empty")
    func exportEmpty() async throws {
        let cluster = try Support.cluster(topics: ["quiet": 1])
        let producer = try Support.producer(cluster)
        _ = try await Support.produceAll(producer, (0..<3).map { ProducerRecord(topic: "quiet", partition: 0, value: Support.bytes("v\($0)")) })
        try await producer.close()
        let window = ["--from-timestamp", "2031-01-01T00:00:00Z", "--to-timestamp", "2031-01-02T00:00:00Z"]
        let output = Self.temporaryFile("empty.jsonl")
        let refused = try Self.sluice(["export", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "quiet", "--output", output] + window)
        #expect(refused.status == 1, "\(refused.errors)")
        #expect(refused.errors.contains("exported 0 records of quiet"), "\(refused.errors)")
        #expect(refused.errors.contains("no record matched the range; --allow-empty accepts that"), "\(refused.errors)")
        let allowed = try Self.sluice(
            ["export", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "quiet", "--output", output, "--allow-empty"] + window)
        #expect(allowed.status == 0, "\(allowed.errors)")
        #expect(allowed.errors.contains("no record matched the range") && !allowed.errors.contains("--allow-empty accepts"))
        #expect(try String(contentsOfFile: output, encoding: .utf8).isEmpty)
        let all = try Self.sluice(["export", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "quiet", "--output", output])
        #expect(all.status == 0 && all.errors.contains("exported 3 records"), "\(all.errors)")
    }
}

@Suite("SluiceTesting's broker fixture")
struct EmbeddedBrokerFixtureTests {
    @Test("The fixture starts a broker with topics, produces envelopes and recorded records (keeping partition, key, headers, timestamp)")
    func fixture() async throws {
        let broker = try EmbeddedBrokerFixture(topics: ["fixture.events": 2])
        let envelopes = (1...300).map { "{\"a\":\($0)}" }
        try await broker.produce(envelopes: envelopes, to: "fixture.events", partition: 0)
        let recorded = Record(
            topic: "elsewhere", partition: 1, offset: 77, timestamp: RecordTimestamp(milliseconds: 1_795_000_000_000, type: .createTime),
            key: [1, 2, 3], value: Array("v".utf8), headers: [RecordHeader(name: "h", string: "x")])
        try await broker.produce(records: [recorded], to: "fixture.events")
        let consumer = try KafkaConsumer(
            configuration: KafkaTestSupport.consumerConfiguration(broker.cluster, group: nil), logger: KafkaTestSupport.logger)
        try await consumer.assign([
            TopicPartition(topic: "fixture.events", partition: 0): .beginning, TopicPartition(topic: "fixture.events", partition: 1): .beginning,
        ])
        let records = try await KafkaTestSupport.collect(from: consumer, what: "301 records") { $0.count >= 301 }
        try await consumer.close()
        await broker.close()
        #expect(records.filter { $0.partition == 0 }.map { String(decoding: $0.value ?? [], as: UTF8.self) } == envelopes, "in the order given")
        let copy = try #require(records.first { $0.partition == 1 })
        #expect(copy.key == [1, 2, 3] && copy.headers == recorded.headers && copy.timestamp?.milliseconds == 1_795_000_000_000)
    }
}
