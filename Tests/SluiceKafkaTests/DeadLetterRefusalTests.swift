import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import Sluice
import SluiceKafka
import SluiceTesting
import Synchronization
import Testing

/// How the Kafka sink names a failed dead-letter write: no broker involved.
@Suite("KafkaDeadLetterSink.classify: transient failures, letters too large, refusals and their fixes")
struct DeadLetterClassificationTests {
    static func letter(valueBytes: Int) -> DeadLetterRecord {
        DeadLetterRecord(
            original: Record(topic: "orders", partition: 0, offset: Offset(3), value: Array(repeating: 0x61, count: valueBytes)),
            topic: "orders.DLT", group: "g", reason: DeadLetterReason(code: "ENVELOPE_NOT_JSON", message: "x"), failedAt: Date())
    }

    static func kafka(_ code: String, retriable: Bool = false) -> KafkaError {
        KafkaError(code: KafkaError.Code(rawValue: code), number: 0, message: "delivery to orders.DLT[0]: \(code)", isRetriable: retriable)
    }

    @Test("MSG_SIZE_TOO_LARGE over the producer's message.max.bytes is too large with that limit; under it (the broker refused), with no limit known")
    func tooLarge() {
        let big = Self.letter(valueBytes: 20_000)
        let small = Self.letter(valueBytes: 2_000)
        for code in ["MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE"] {
            #expect(KafkaDeadLetterSink.classify(Self.kafka(code), letter: big, producerLimit: 10_000)?.kind == .tooLarge(limit: 10_000))
            #expect(KafkaDeadLetterSink.classify(Self.kafka(code), letter: small, producerLimit: 10_000)?.kind == .tooLarge(limit: nil))
        }
        #expect(KafkaDeadLetterSink.classify(Self.kafka("MSG_SIZE_TOO_LARGE"), letter: big, producerLimit: 10_000)?.code == "MSG_SIZE_TOO_LARGE")
    }

    @Test("Authorization and configuration refusals name their fix and the topic")
    func refusals() throws {
        let letter = Self.letter(valueBytes: 10)
        let expected: [(code: String, fix: String)] = [
            ("TOPIC_AUTHORIZATION_FAILED", "grant WRITE (and DESCRIBE) on topic orders.DLT"),
            ("CLUSTER_AUTHORIZATION_FAILED", "grant IDEMPOTENT_WRITE on the cluster"),
            ("_UNKNOWN_TOPIC", "create topic orders.DLT"),
            ("UNKNOWN_TOPIC_OR_PART", "create topic orders.DLT"),
            ("TOPIC_EXCEPTION", "orders.DLT is not a valid topic name"),
            ("INVALID_RECORD", "topic orders.DLT refuses the record as invalid"),
            ("POLICY_VIOLATION", "a broker policy refuses writes to topic orders.DLT"),
            ("UNSUPPORTED_FOR_MESSAGE_FORMAT", "message.format.version"),
            ("INVALID_REQUIRED_ACKS", "acks=all"),
            ("UNSUPPORTED_COMPRESSION_TYPE", "compression.type"),
            ("INVALID_TIMESTAMP", "message.timestamp.difference.max.ms"),
        ]
        for (code, fix) in expected {
            let failure = try #require(KafkaDeadLetterSink.classify(Self.kafka(code), letter: letter, producerLimit: 1_000_000), "\(code)")
            guard case .refused(let named) = failure.kind else {
                Issue.record("\(code) is not a refusal: \(failure.kind)")
                continue
            }
            #expect(named.contains(fix), "\(code): \(named)")
            #expect(failure.code == code)
        }
    }

    @Test("Outages are transient (nil): timeouts, transport errors, leaders moving, replicas missing, and errors that are not Kafka's")
    func transient() {
        let letter = Self.letter(valueBytes: 10)
        for code in ["_MSG_TIMED_OUT", "_TRANSPORT", "_TIMED_OUT", "NOT_LEADER_OR_FOLLOWER", "NOT_ENOUGH_REPLICAS", "LEADER_NOT_AVAILABLE", "REQUEST_TIMED_OUT", "CANCELLED", "CLIENT_CLOSED"] {
            #expect(KafkaDeadLetterSink.classify(Self.kafka(code, retriable: true), letter: letter, producerLimit: 1_000_000) == nil, "\(code)")
        }
        #expect(KafkaDeadLetterSink.classify(CancellationError(), letter: letter, producerLimit: 1_000_000) == nil)
    }

    @Test("The producer's limit is its message.max.bytes, librdkafka's 1,000,000 by default")
    func producerLimit() {
        var configuration = KafkaProducerConfiguration(bootstrapServers: ["localhost:9092"])
        #expect(configuration.messageMaxBytes == 1_000_000)
        configuration.properties["message.max.bytes"] = "10000"
        #expect(configuration.messageMaxBytes == 10_000)
    }
}

/// Refused dead-letter writes on the embedded cluster: a letter too large becomes a stub and
/// its partition goes on; `dlq show` and `dlq redrive` find the original at its source offset;
/// a refusal halts with its fix logged and resumes once fixed.
@Suite("Dead-letter refusals on the embedded cluster: stubs, their originals, refusals", .serialized)
struct DeadLetterRefusalBrokerTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    /// The offsets of the records handled, in order.
    final class Handled: Sendable {
        private let offsets = Mutex<[Int64]>([])
        func append(_ offset: Int64) { offsets.withLock { $0.append(offset) } }
        var all: [Int64] { offsets.withLock { $0 } }
    }

    static func router(_ handled: Handled) -> EventRouter<InMemoryDedupeStore.Transaction> {
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { _, context in
            handled.append(context.record.offset.rawValue)
        }
        return router
    }

    static func deadLetters(_ cluster: EmbeddedKafkaCluster, _ topic: String, count: Int) async throws -> [Record] {
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await consumer.assign([TopicPartition(topic: topic, partition: 0): .beginning])
        let records = try await Support.collect(from: consumer, what: "\(count) dead letter(s)") { $0.count >= count }
        try await consumer.close()
        return records
    }

    static func text(_ record: Record, _ name: String) -> String? {
        record.header(name).map { String(decoding: $0, as: UTF8.self) }
    }

    @Test("A record over the dead-letter producer's message.max.bytes is dead-lettered as a stub (key, headers, a prefix of the value, size and SHA-256); its partition goes on; dlq show says where the original is; dlq redrive copies the byte-exact original")
    func stubShowRedrive() async throws {
        let cluster = try Support.cluster(topics: ["big": 1, "big.DLT": 1])
        let producer = try Support.producer(cluster)
        let original: [UInt8] = (0..<40_000).map { UInt8(truncatingIfNeeded: $0 &* 131 &+ 17) }
        try await Support.produceAll(producer, [
            ProducerRecord(topic: "big", partition: 0, value: Pipeline.envelope(id: "b0", data: #"{"key":"k","seq":0}"#)),
            ProducerRecord(topic: "big", partition: 0, key: Support.bytes("order-1"), value: original, headers: [RecordHeader(name: "app", string: "kept")]),
        ] + (2..<6).map { ProducerRecord(topic: "big", partition: 0, value: Pipeline.envelope(id: "b\($0)", data: #"{"key":"k","seq":\#($0)}"#)) })

        let handled = Handled()
        let metrics = TestMetrics()
        let deadLetterProducer = try Support.producer(cluster) { $0.properties["message.max.bytes"] = "10000" }
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "big", topics: ["big"], store: InMemoryDedupeStore(), router: Self.router(handled),
            deadLetterProducer: deadLetterProducer, metricsFactory: metrics))
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "big"), logger: Support.logger)
        let partition = TopicPartition(topic: "big", partition: 0)
        try await Support.eventually("the records after the large one handled and committed", timeout: .seconds(60)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(6)
        }
        try await running.stop()
        try await reader.close()
        #expect(handled.all == [0, 2, 3, 4, 5])
        #expect(metrics.counterTotal(label: "sluice.records.dead_letter_truncated", dimensions: [("topic", "big")]) == 1)
        #expect(metrics.counterTotal(label: "sluice.records.dead_lettered", dimensions: [("topic", "big"), ("code", "ENVELOPE_NOT_JSON")]) == 1)
        #expect((try? metrics.expectGauge("sluice.partition.halted", [("topic", "big"), ("partition", "0")])) == nil, "a stub is no halt")

        let letters = try await Self.deadLetters(cluster, "big.DLT", count: 1)
        #expect(letters.count == 1)
        let stub = try #require(letters.first)
        #expect(Self.text(stub, DeadLetterHeader.valueTruncated) == "true")
        #expect(Self.text(stub, DeadLetterHeader.valueSize) == "40000")
        #expect(Self.text(stub, DeadLetterHeader.valueSHA256) == PayloadHash.of(original))
        #expect(Self.text(stub, DeadLetterHeader.errorCode) == "ENVELOPE_NOT_JSON")
        #expect(Self.text(stub, DeadLetterHeader.originalOffset) == "1")
        #expect(stub.key == Support.bytes("order-1"), "the key fits, so it is kept")
        #expect(Self.text(stub, "app") == "kept", "the headers fit, so they are kept")
        let prefix = try #require(stub.value)
        #expect(prefix.count > 8_000 && prefix.count < 10_000, "as much of the value as fits: \(prefix.count)")
        #expect(prefix == Array(original.prefix(prefix.count)))

        let show = try OperatorToolTests.sluice([
            "dlq", "show", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "big.DLT", "--partition", "0", "--offset", "0",
        ])
        #expect(show.status == 0, "\(show.errors)")
        #expect(show.output.contains("sluice.value.truncated: true") && show.output.contains("sluice.value.size: 40000"))
        #expect(show.output.contains("truncated: the record was too large for the dead-letter topic"))
        #expect(show.output.contains("of its 40000 value bytes (sha256 \(PayloadHash.of(original)))"))
        #expect(show.output.contains("The original stays readable at big[0]@1 while that topic retains it"))

        let redrive = try OperatorToolTests.sluice(["dlq", "redrive", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "big.DLT"])
        #expect(redrive.status == 0, "\(redrive.errors)")
        #expect(redrive.output.contains("(the original, from big[0]@1, sha256 checked)"))
        #expect(redrive.output.contains("re-drove 1 record(s); 0 left (other codes); 0 failed"))
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await probe.assign([partition: Offset(6)])
        let redriven = try await Support.collect(from: probe, what: "the re-driven original") { !$0.isEmpty }
        try await probe.close()
        #expect(redriven.count == 1)
        #expect(redriven.first?.value == original, "byte-exact")
        #expect(redriven.first?.key == Support.bytes("order-1"))
        #expect(redriven.first?.headers.map(\.name) == ["app", "sluice.redrive.count"])
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("A record over librdkafka's default message.max.bytes (1 MB) meets a dead-letter producer left at the default: a stub of about 1 MB; dlq redrive lets the 1.5 MB original through its own producer")
    func overDefaultLimit() async throws {
        let cluster = try Support.cluster(topics: ["huge": 1, "huge.DLT": 1])
        let producer = try Support.producer(cluster) { $0.properties["message.max.bytes"] = "2000000" }
        let original: [UInt8] = (0..<1_500_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        try await Support.produceAll(producer, [
            ProducerRecord(topic: "huge", partition: 0, key: Support.bytes("order-3"), value: original),
            ProducerRecord(topic: "huge", partition: 0, value: Pipeline.envelope(id: "h1", data: #"{"key":"k","seq":1}"#)),
        ])
        let handled = Handled()
        let deadLetterProducer = try Support.producer(cluster)
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "huge", topics: ["huge"], store: InMemoryDedupeStore(), router: Self.router(handled),
            deadLetterProducer: deadLetterProducer))
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "huge"), logger: Support.logger)
        let partition = TopicPartition(topic: "huge", partition: 0)
        try await Support.eventually("the partition to go on past the huge record", timeout: .seconds(60)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(2)
        }
        try await running.stop()
        try await reader.close()
        #expect(handled.all == [1])
        let stub = try #require(try await Self.deadLetters(cluster, "huge.DLT", count: 1).first)
        #expect(Self.text(stub, DeadLetterHeader.errorCode) == "ENVELOPE_TOO_LARGE")
        #expect(Self.text(stub, DeadLetterHeader.valueSize) == "1500000")
        #expect((stub.value?.count ?? 0) > 990_000 && (stub.value?.count ?? 0) < 1_000_000)

        let redrive = try OperatorToolTests.sluice(["dlq", "redrive", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "huge.DLT"])
        #expect(redrive.status == 0, "\(redrive.errors)")
        #expect(redrive.output.contains("re-drove 1 record(s); 0 left (other codes); 0 failed"))
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await probe.assign([partition: Offset(2)])
        let redriven = try await Support.collect(from: probe, what: "the re-driven original") { !$0.isEmpty }
        try await probe.close()
        #expect(redriven.first?.value == original, "byte-exact")
        #expect(redriven.first?.key == Support.bytes("order-3"))
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test(
        "A broker refusing the letter as too large (its limit unknown): a stub with an empty value, key and headers kept; the partition goes on",
        arguments: [KafkaBrokerError.recordListTooLarge, KafkaBrokerError(rawValue: 10)])  // 10: MSG_SIZE_TOO_LARGE
    func brokerRefusalStub(_ refusal: KafkaBrokerError) async throws {
        let cluster = try Support.cluster(topics: ["wide": 1, "wide.DLT": 1])
        let producer = try Support.producer(cluster)
        let original: [UInt8] = Array(repeating: 0xFE, count: 2_000)
        try await Support.produceAll(producer, [
            ProducerRecord(topic: "wide", partition: 0, key: Support.bytes("order-2"), value: original, headers: [RecordHeader(name: "app", string: "kept")]),
            ProducerRecord(topic: "wide", partition: 0, value: Pipeline.envelope(id: "w1", data: #"{"key":"k","seq":1}"#)),
        ])
        let handled = Handled()
        let deadLetterProducer = try Support.producer(cluster)
        cluster.injectErrors([refusal], into: .produce)
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "wide", topics: ["wide"], store: InMemoryDedupeStore(), router: Self.router(handled),
            deadLetterProducer: deadLetterProducer))
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "wide"), logger: Support.logger)
        let partition = TopicPartition(topic: "wide", partition: 0)
        try await Support.eventually("the partition to go on past the refused record", timeout: .seconds(60)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(2)
        }
        try await running.stop()
        try await reader.close()
        #expect(handled.all == [1])
        let letters = try await Self.deadLetters(cluster, "wide.DLT", count: 1)
        #expect(letters.count == 1)
        let stub = try #require(letters.first)
        #expect(Self.text(stub, DeadLetterHeader.valueTruncated) == "true")
        #expect(Self.text(stub, DeadLetterHeader.valueSize) == "2000")
        #expect(Self.text(stub, DeadLetterHeader.valueSHA256) == PayloadHash.of(original))
        #expect(stub.value == [], "the topic's limit is not known: an empty value")
        #expect(stub.key == Support.bytes("order-2") && Self.text(stub, "app") == "kept")
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("An authorization refusal halts the partition with a critical log naming the fix and the halted gauge set, commits nothing past it, and resumes once fixed")
    func refusalHaltsWithFix() async throws {
        let cluster = try Support.cluster(topics: ["acl": 1, "acl.DLT": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<7).map { index in
            ProducerRecord(topic: "acl", partition: 0, value: index == 3
                ? Support.bytes("poison") : Pipeline.envelope(id: "a\(index)", data: #"{"key":"k","seq":\#(index)}"#))
        })
        let handled = Handled()
        let metrics = TestMetrics()
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "acl") { _ in logs }
        logger.logLevel = .notice
        let deadLetterProducer = try Support.producer(cluster) { $0.deliveryTimeout = .milliseconds(500) }
        cluster.injectErrors(Array(repeating: .topicAuthorizationFailed, count: 100_000), into: .produce)
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "acl", topics: ["acl"], store: InMemoryDedupeStore(), router: Self.router(handled),
            deadLetterProducer: deadLetterProducer, logger: logger, metricsFactory: metrics
        ) { $0.pipeline.deadLetters.maxRetryDelay = .milliseconds(300) })
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "acl"), logger: Support.logger)
        let partition = TopicPartition(topic: "acl", partition: 0)
        let fix = "grant WRITE (and DESCRIBE) on topic acl.DLT to the dead-letter producer's principal"
        try await Support.eventually("a critical log naming the fix", timeout: .seconds(60)) {
            logs.entries.filter { $0.level == .critical && "\($0.message)".contains(fix) }.count >= 2
        }
        try await Support.eventually("the records before the refused one committed", timeout: .seconds(30)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(3)
        }
        try await Task.sleep(for: .seconds(1))
        #expect(handled.all == [0, 1, 2], "nothing behind the refused record runs")
        #expect(try await reader.committedOffsets(for: [partition])[partition] == Offset(3), "nothing past it is committed")
        #expect(try metrics.expectGauge("sluice.partition.halted", [("topic", "acl"), ("partition", "0")]).lastValue == 1)
        let criticals = logs.entries.filter { $0.level == .critical }
        // (The very first write may time out instead, while the producer connects.)
        let critical = try #require(criticals.first { "\($0.message)".contains(fix) })
        #expect(critical.metadata["error.code"] == "TOPIC_AUTHORIZATION_FAILED", "\(criticals.prefix(3).map { "\($0.message) \($0.metadata)" })")
        #expect(critical.metadata["dead_letter.topic"] == "acl.DLT")
        #expect(!logs.entries.contains { "\($0.message)".contains("stub") }, "a refusal is no reason for a stub")

        cluster.clearInjectedErrors(for: .produce)
        try await Support.eventually("the partition to resume and commit to the end", timeout: .seconds(60)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(7)
        }
        #expect(handled.all == [0, 1, 2, 4, 5, 6])
        #expect(try metrics.expectGauge("sluice.partition.halted", [("topic", "acl"), ("partition", "0")]).lastValue == 0)
        #expect(logs.entries.contains { "\($0.message)" == "dead-letter topic writable again; partition continues" })
        try await running.stop()
        try await reader.close()
        let letters = try await Self.deadLetters(cluster, "acl.DLT", count: 1)
        #expect(letters.first?.value == Support.bytes("poison"), "the whole letter, once allowed")
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("dlq redrive refuses a stub whose original is gone (an offset past the end, a topic that does not exist) with DEAD_LETTER_ORIGINAL_EXPIRED, or another record (its SHA-256 differs) with DEAD_LETTER_ORIGINAL_MISMATCH, and re-drives the other letters")
    func redriveRefusals() async throws {
        let cluster = try Support.cluster(topics: ["gone": 1, "gone.DLT": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, [ProducerRecord(topic: "gone", partition: 0, value: Support.bytes("what is there now"))])
        // Stubs as the pipeline writes them, pointing where no original is (the embedded cluster
        // cannot delete a topic or move its log start, so the letters name such places instead).
        // (Values of 5,000 bytes, so a stub is smaller than its letter.)
        func stub(topic: String, offset: Int64, of text: String) -> ProducerRecord {
            let value = Array(String(repeating: text, count: 5_000 / text.utf8.count + 1).utf8)
            let letter = DeadLetterRecord(
                original: Record(topic: topic, partition: 0, offset: Offset(offset), value: value), topic: "gone.DLT", group: "g",
                reason: DeadLetterReason(code: "ENVELOPE_NOT_JSON", message: "x"), failedAt: Date())
            let minimal = letter.stubs(fittingIn: nil).last!
            return ProducerRecord(topic: "gone.DLT", partition: 0, key: minimal.key, value: minimal.value, headers: minimal.headers)
        }
        let whole = DeadLetterRecord(
            original: Record(topic: "gone", partition: 0, offset: Offset(0), value: Support.bytes("small")), topic: "gone.DLT", group: "g",
            reason: DeadLetterReason(code: "ENVELOPE_NOT_JSON", message: "x"), failedAt: Date())
        try await Support.produceAll(producer, [
            stub(topic: "gone", offset: 999, of: "long gone"),
            stub(topic: "gone", offset: 0, of: "another value"),
            stub(topic: "vanished", offset: 0, of: "its topic deleted"),
            ProducerRecord(topic: "gone.DLT", partition: 0, key: whole.key, value: whole.value, headers: whole.headers),
        ])
        let redrive = try OperatorToolTests.sluice(["dlq", "redrive", "--bootstrap-servers", cluster.bootstrapServers, "--topic", "gone.DLT"])
        #expect(redrive.status == 1)
        #expect(redrive.errors.contains("re-drive of gone.DLT[0]@0 refused: DEAD_LETTER_ORIGINAL_EXPIRED"), "\(redrive.errors)")
        #expect(redrive.errors.contains("re-drive of gone.DLT[0]@1 refused: DEAD_LETTER_ORIGINAL_MISMATCH"), "\(redrive.errors)")
        #expect(redrive.errors.contains("re-drive of gone.DLT[0]@2 refused: DEAD_LETTER_ORIGINAL_EXPIRED"), "\(redrive.errors)")
        #expect(redrive.output.contains("re-drove 1 record(s); 0 left (other codes); 3 failed"), "\(redrive.output)")
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        let high = try await probe.watermarks(for: TopicPartition(topic: "gone", partition: 0)).high
        #expect(high == 2, "only the whole letter was re-driven")
        try await probe.close()
        try await producer.close()
    }
}
