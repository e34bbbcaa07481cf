import Foundation
import InMemoryLogging
import Logging
import MetricsTestKit
import ServiceLifecycle
import Sluice
import SluiceKafka
import Synchronization
import Testing

@Suite("The pipeline on the embedded cluster: order, poison records, dead-letter outages, shutdown", .serialized)
struct EventConsumerTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    @Test("8 partitions, 100,000 events with per-key sequences: handled in order, zero violations")
    func order() async throws {
        let total = 100_000
        let cluster = try Support.cluster(topics: ["orders": 8])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<total).map { index in
            let key = "k\(index % 64)"
            return ProducerRecord(topic: "orders", key: Support.bytes(key),
                                  value: Pipeline.envelope(id: "e\(index)", data: #"{"key":"\#(key)","seq":\#(index / 64)}"#))
        })
        struct Seen { var last: [String: Int] = [:]; var violations = 0; var handled = 0 }
        let seen = Mutex(Seen())
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "sequence-check") { event, _ in
            seen.withLock { seen in
                if event.payload.seq != (seen.last[event.payload.key] ?? -1) + 1 { seen.violations += 1 }
                seen.last[event.payload.key] = event.payload.seq
                seen.handled += 1
            }
        }
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "order", topics: ["orders"], store: InMemoryDedupeStore(), router: router, deadLetterProducer: producer))
        let start = ContinuousClock.now
        try await Support.eventually("all events handled", timeout: .seconds(240)) { seen.withLock { $0.handled } >= total }
        print("pipeline: \(total) events through 8 lanes in \(ContinuousClock.now - start)")
        try await running.stop()
        #expect(seen.withLock { $0.violations } == 0)
        #expect(seen.withLock { $0.handled } == total)
        try await producer.close()
    }

    @Test("Every kind of poison record lands on the DLT with its code and byte-exact key, value and headers; healthy records around them are handled")
    func poison() async throws {
        let cluster = try Support.cluster(topics: ["poison": 1, "poison.DLT": 1])
        let producer = try Support.producer(cluster)
        let good = { (n: Int) in Pipeline.envelope(id: "good-\(n)", data: #"{"key":"a","seq":\#(n)}"#) }
        let cases: [(code: String, value: [UInt8]?)] = [
            ("ENVELOPE_NOT_JSON", Support.bytes("{not json")),
            ("ENVELOPE_NOT_JSON", nil),
            ("ENVELOPE_TOO_LARGE", Pipeline.envelope(id: "big", data: #"{"key":"\#(String(repeating: "x", count: 100_000))","seq":1}"#)),
            ("ENVELOPE_FIELD_MISSING", Support.bytes(#"{"event_id":"m1","event_type":"orders.item_added","schema_version":1}"#)),
            ("EVENT_ID_INVALID", Pipeline.envelope(id: "bad id!", data: #"{"key":"a","seq":1}"#)),
            ("ENVELOPE_FIELD_INVALID", Pipeline.envelope(id: "t1", type: "Orders.ItemAdded", data: #"{"key":"a","seq":1}"#)),
            ("EVENT_TYPE_UNKNOWN", Pipeline.envelope(id: "u1", type: "orders.item_removed", data: #"{"key":"a","seq":1}"#)),
            ("SCHEMA_VERSION_UNSUPPORTED", Pipeline.envelope(id: "v9", version: 9, data: #"{"key":"a","seq":1}"#)),
            ("CAUSATION_INVALID", Pipeline.envelope(id: "c1", data: #"{"key":"a","seq":1}"#, causation: "c1")),
            ("PAYLOAD_SCHEMA_VIOLATION", Pipeline.envelope(id: "p1", data: #"{"key":"a","seq":"one"}"#)),
            ("ORDER_REJECTED", Pipeline.envelope(id: "f1", data: #"{"key":"a","seq":1,"fail":"fatal"}"#)),
            ("HANDLER_RETRIES_EXHAUSTED", Pipeline.envelope(id: "f2", data: #"{"key":"a","seq":1,"fail":"always"}"#)),
        ]
        var sent: [ProducerRecord] = [ProducerRecord(topic: "poison", partition: 0, key: Support.bytes("k-good-0"), value: good(0))]
        for (index, poison) in cases.enumerated() {
            sent.append(ProducerRecord(
                topic: "poison", partition: 0, key: index % 3 == 0 ? nil : [0xFF, UInt8(index), 0x00],
                value: poison.value,
                headers: [RecordHeader(name: "origin", value: [0x01, 0xFE]), RecordHeader(name: "nil", value: nil)]))
            sent.append(ProducerRecord(topic: "poison", partition: 0, key: Support.bytes("k-good-\(index + 1)"), value: good(index + 1)))
        }
        sent.append(ProducerRecord(topic: "poison", partition: 0, value: Pipeline.envelope(id: "retried", data: #"{"key":"b","seq":1,"fail":"twice"}"#)))
        let reports = try await Support.produceAll(producer, sent)

        let handled = Mutex<[String]>([])
        let attempts = Mutex<[String: Int]>([:])
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "orders") { event, context in
            let attempt = attempts.withLock { $0[event.eventID, default: 0] += 1; return $0[event.eventID]! }
            #expect(attempt == context.attempt)
            switch event.payload.fail {
            case "fatal": throw SluiceError(code: "ORDER_REJECTED", message: "order cannot be placed", isRetriable: false)
            case "always": throw CocoaError(.fileLocking)
            case "twice" where attempt <= 2: throw CocoaError(.fileLocking)
            default: handled.withLock { $0.append(event.eventID) }
            }
        }
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "poison", topics: ["poison"], store: InMemoryDedupeStore(), router: router, deadLetterProducer: producer))

        let dlt = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await dlt.assign([TopicPartition(topic: "poison.DLT", partition: 0): .beginning])
        let letters = try await Support.collect(from: dlt, timeout: .seconds(60)) { $0.count >= cases.count }
        try await Support.eventually("healthy records handled") { handled.withLock { $0.count } >= cases.count + 2 }
        try await running.stop()
        // Timestamps as the broker stored them (a delivery report may carry the log-append time).
        let source = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await source.assign([TopicPartition(topic: "poison", partition: 0): .beginning])
        let sentCount = sent.count
        let originals = try await Support.collect(from: source) { $0.count >= sentCount }
        try await source.close()

        #expect(Set(handled.withLock { $0 }) == Set((0...cases.count).map { "good-\($0)" } + ["retried"]))
        #expect(attempts.withLock { $0["retried"] } == 3, "two retriable failures, then success")
        #expect(attempts.withLock { $0["f1"] } == 1, "a non-retryable failure is not retried")
        #expect(attempts.withLock { $0["f2"] } == 3, "retried up to the policy's three attempts")
        #expect(letters.count == cases.count)
        for (index, (letter, poison)) in zip(letters, cases).enumerated() {
            func header(_ name: String) -> String? { letter.header(name).map { String(decoding: $0, as: UTF8.self) } }
            let original = sent[index * 2 + 1]
            let originalReport = reports[index * 2 + 1]
            #expect(header(DeadLetterHeader.errorCode) == poison.code, "case \(index)")
            #expect(letter.key == original.key)
            #expect(letter.value == original.value)
            #expect(Array(letter.headers.prefix(2)) == original.headers)
            #expect(header(DeadLetterHeader.originalTopic) == "poison")
            #expect(header(DeadLetterHeader.originalPartition) == "0")
            #expect(header(DeadLetterHeader.originalOffset) == String(originalReport.offset.rawValue))
            #expect(header(DeadLetterHeader.originalTimestamp) == originals[index * 2 + 1].timestamp.map { String($0.milliseconds) })
            #expect(header(DeadLetterHeader.consumerGroup) == "poison")
            #expect(header(DeadLetterHeader.errorRetryable) == (poison.code == "HANDLER_RETRIES_EXHAUSTED" ? "true" : "false"))
            #expect(header(DeadLetterHeader.failedAt)?.hasSuffix("Z") == true)
            #expect(header(DeadLetterHeader.errorMessage)?.isEmpty == false)
            let handlerFailed = poison.code == "ORDER_REJECTED" || poison.code == "HANDLER_RETRIES_EXHAUSTED"
            #expect((header(DeadLetterHeader.handler) == "orders") == handlerFailed)
            #expect(header(DeadLetterHeader.attempts) == (poison.code == "HANDLER_RETRIES_EXHAUSTED" ? "3" : "1"))
            if ["PAYLOAD_SCHEMA_VIOLATION", "ORDER_REJECTED", "HANDLER_RETRIES_EXHAUSTED", "CAUSATION_INVALID"].contains(poison.code) {
                #expect(header(DeadLetterHeader.eventID) != nil, "the envelope had an id: \(poison.code)")
                #expect(header(DeadLetterHeader.correlationID) != nil)
            }
        }
        try await dlt.close()
        try await producer.close()
    }

    @Test("A dead-letter topic that cannot be written halts only its partition, commits nothing past the poison record, and resumes when writing works again")
    func deadLetterOutage() async throws {
        let cluster = try Support.cluster(topics: ["halt": 2, "halt.DLT": 1])
        let producer = try Support.producer(cluster)
        let p0 = TopicPartition(topic: "halt", partition: 0)
        let p1 = TopicPartition(topic: "halt", partition: 1)
        var records: [ProducerRecord] = []
        for index in 0..<20 {
            for partition in 0..<Int32(2) {
                let value = partition == 0 && index == 5
                    ? Support.bytes("poison")
                    : Pipeline.envelope(id: "h\(partition)-\(index)", data: #"{"key":"k","seq":\#(index)}"#)
                records.append(ProducerRecord(topic: "halt", partition: partition, value: value))
            }
        }
        try await Support.produceAll(producer, records)

        let handled = Mutex<[Int32: Int]>([:])
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { _, context in
            handled.withLock { $0[context.record.partition, default: 0] += 1 }
        }
        // The dead-letter producer fails fast while the broker refuses its writes.
        let deadLetterProducer = try Support.producer(cluster) { $0.deliveryTimeout = .milliseconds(500) }
        cluster.injectErrors(Array(repeating: .notEnoughReplicas, count: 100_000), into: .produce)
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "halt", topics: ["halt"], store: InMemoryDedupeStore(), router: router,
            deadLetterProducer: deadLetterProducer) { $0.pipeline.deadLetters.maxRetryDelay = .milliseconds(300) })

        // A member of the group that never subscribes: it only reads the group's commits.
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "halt"), logger: Support.logger)
        let committed: @Sendable () async throws -> [TopicPartition: Offset] = { try await reader.committedOffsets(for: [p0, p1]) }
        try await Support.eventually("the healthy partition to be handled and committed", timeout: .seconds(60)) {
            try await committed()[p1] == Offset(20)
        }
        try await Task.sleep(for: .seconds(2))
        #expect(handled.withLock { $0[0] } == 5, "partition 0 stops at its poison record")
        #expect(try await committed()[p0] == Offset(5), "nothing past the poison record is committed")

        cluster.clearInjectedErrors(for: .produce)
        try await Support.eventually("partition 0 to continue and commit to the end", timeout: .seconds(60)) {
            try await committed()[p0] == Offset(20)
        }
        #expect(handled.withLock { $0[0] } == 19)
        #expect(handled.withLock { $0[1] } == 20)
        try await running.stop()
        try await reader.close()
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("Graceful shutdown drains, commits and leaves; a restart handles nothing twice")
    func gracefulShutdown() async throws {
        let cluster = try Support.cluster(topics: ["graceful": 4])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<20_000).map {
            ProducerRecord(topic: "graceful", key: Support.bytes("k\($0 % 13)"), value: Pipeline.envelope(id: "g\($0)", data: #"{"key":"k","seq":\#($0)}"#))
        })
        let calls = Mutex<[String: Int]>([:])
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { event, _ in
            try await Task.sleep(for: .milliseconds(1))
            calls.withLock { $0[event.eventID, default: 0] += 1 }
        }
        // A fresh store per run: only Kafka's commits stand between the two runs.
        let first = try Pipeline.consumer(
            cluster: cluster, group: "graceful", topics: ["graceful"], store: InMemoryDedupeStore(), router: router,
            deadLetterProducer: producer
        ) { configuration in
            configuration.shutdownTimeout = .seconds(10)
            // Small lanes and buffer: what the drain finishes is bounded by them, not by how fast
            // this machine happens to be (with the defaults, a fast run drained all 20,000).
            configuration.dispatcher.laneCapacity = 50
            configuration.dispatcher.resumeBelow = 12
            configuration.consumer.maxBufferedRecords = 200
        }
        let group = ServiceGroup(configuration: .init(services: [first], logger: Support.logger))
        let running = Task { try await group.run() }
        try await Support.eventually("some events handled") { calls.withLock { $0.count } >= 300 }
        let stoppedAt = ContinuousClock.now
        await group.triggerGracefulShutdown()
        try await running.value
        #expect(ContinuousClock.now - stoppedAt < .seconds(12), "shutdown within the configured timeout")
        let afterFirst = calls.withLock { $0.count }

        let second = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "graceful", topics: ["graceful"], store: InMemoryDedupeStore(), router: router, deadLetterProducer: producer))
        try await Support.eventually("the rest handled", timeout: .seconds(120)) { calls.withLock { $0.count } >= 20_000 }
        try await second.stop()
        #expect(afterFirst < 20_000)
        let repeated = calls.withLock { $0.filter { $0.value > 1 } }
        #expect(repeated.isEmpty, "handled twice across the restart: \(repeated.keys.sorted().prefix(5))")
        try await producer.close()
    }
}

@Suite("The pipeline through rebalances and commit failures", .serialized)
struct EventConsumerRebalanceTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    @Test("Rebalance while handlers are slow: no partition is handled by two members at once, and the new owner starts where the old one stopped")
    func rebalanceWhileSlow() async throws {
        let total = 4_000
        let cluster = try Support.cluster(topics: ["slow": 4])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<total).map {
            ProducerRecord(topic: "slow", partition: Int32($0 % 4), value: Pipeline.envelope(id: "s\($0)", data: #"{"key":"k","seq":\#($0)}"#))
        })
        struct Tracking { var busy: [Int32: String] = [:]; var overlaps = 0; var calls: [String: Int] = [:]; var lastOffset: [Int32: Int64] = [:]; var orderViolations = 0 }
        let tracking = Mutex(Tracking())
        func router(_ member: String) -> EventRouter<InMemoryDedupeStore.Transaction> {
            var router = EventRouter<InMemoryDedupeStore.Transaction>()
            router.on("orders.item_added", as: Pipeline.Item.self, handler: "slow") { event, context in
                let partition = context.record.partition
                tracking.withLock { tracking in
                    if let other = tracking.busy[partition], other != member { tracking.overlaps += 1 }
                    tracking.busy[partition] = member
                    if let last = tracking.lastOffset[partition], context.record.offset.rawValue != last + 1 { tracking.orderViolations += 1 }
                }
                try await Task.sleep(for: .milliseconds(2))
                tracking.withLock { tracking in
                    tracking.busy[partition] = nil
                    tracking.calls[event.eventID, default: 0] += 1
                    tracking.lastOffset[partition] = context.record.offset.rawValue
                }
            }
            return router
        }
        // One store for the group, as with a shared database: the new owner resumes from it.
        let store = InMemoryDedupeStore()
        let a = Pipeline.Running(try Pipeline.consumer(cluster: cluster, group: "slow", topics: ["slow"], store: store, router: router("a"), deadLetterProducer: producer))
        try await Support.eventually("a to handle some") { tracking.withLock { $0.calls.count } >= 300 }
        let b = Pipeline.Running(try Pipeline.consumer(cluster: cluster, group: "slow", topics: ["slow"], store: store, router: router("b"), deadLetterProducer: producer))
        try await Support.eventually("more handled after b joined", timeout: .seconds(60)) { tracking.withLock { $0.calls.count } >= 1_500 }
        try await a.stop()
        try await Support.eventually("every event handled", timeout: .seconds(120)) { tracking.withLock { $0.calls.count } >= total }
        try await b.stop()
        let result = tracking.withLock { $0 }
        #expect(result.overlaps == 0, "a partition was handled by two members at the same time")
        #expect(result.orderViolations == 0, "each new owner continued exactly after the last handled offset")
        #expect(result.calls.values.allSatisfy { $0 == 1 }, "no handler ran twice for an event")
        try await producer.close()
    }

    @Test("Commit failures are retried until the commit lands")
    func commitFailuresRetried() async throws {
        let cluster = try Support.cluster(topics: ["commits": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<50).map {
            ProducerRecord(topic: "commits", value: Pipeline.envelope(id: "c\($0)", data: #"{"key":"k","seq":\#($0)}"#))
        })
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "noop") { _, _ in }
        cluster.injectErrors(Array(repeating: .requestTimedOut, count: 8), into: .offsetCommit)
        let metrics = TestMetrics()
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "commits", topics: ["commits"], store: InMemoryDedupeStore(), router: router,
            deadLetterProducer: producer, metricsFactory: metrics))
        let reader = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "commits"), logger: Support.logger)
        let partition = TopicPartition(topic: "commits", partition: 0)
        try await Support.eventually("the commit to land despite the failures", timeout: .seconds(60)) {
            try await reader.committedOffsets(for: [partition])[partition] == Offset(50)
        }
        try await running.stop()
        #expect(metrics.counterTotal(label: "sluice.commits.failed") >= 1, "failed commits are counted, not just retried")
        try await reader.close()
        try await producer.close()
    }

    @Test("Unknown event types are dead-lettered by default, or skipped and counted when the policy says so")
    func unknownEventTypes() async throws {
        let cluster = try Support.cluster(topics: ["mixed": 1, "mixed.DLT": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, [
            ProducerRecord(topic: "mixed", value: Pipeline.envelope(id: "u1", type: "orders.item_removed", data: "{}")),
            ProducerRecord(topic: "mixed", value: Pipeline.envelope(id: "k1", data: #"{"key":"k","seq":1}"#)),
        ])
        let handled = Mutex(0)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { _, _ in handled.withLock { $0 += 1 } }
        let skipping = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "skip", topics: ["mixed"], store: InMemoryDedupeStore(), router: router,
            deadLetterProducer: producer) { $0.pipeline.unknownEventTypes = .skip })
        try await Support.eventually("the known event handled") { handled.withLock { $0 } == 1 }
        try await skipping.stop()
        let dlt = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        #expect(try await dlt.watermarks(for: TopicPartition(topic: "mixed.DLT", partition: 0)).high == 0, "skipped, not dead-lettered")

        let lettering = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "letter", topics: ["mixed"], store: InMemoryDedupeStore(), router: router, deadLetterProducer: producer))
        try await dlt.assign([TopicPartition(topic: "mixed.DLT", partition: 0): .beginning])
        let letters = try await Support.collect(from: dlt) { !$0.isEmpty }
        #expect(letters.first?.header(DeadLetterHeader.errorCode) == Array("EVENT_TYPE_UNKNOWN".utf8))
        try await lettering.stop()
        try await dlt.close()
        try await producer.close()
    }

    @Test("Metrics count consumed, handled, duplicate, dead-lettered (by code) and retried records; logs carry the record's metadata")
    func metricsAndLogMetadata() async throws {
        let cluster = try Support.cluster(topics: ["observed": 1, "observed.DLT": 1])
        let producer = try Support.producer(cluster)
        let good = Pipeline.envelope(id: "o1", data: #"{"key":"k","seq":1}"#)
        try await Support.produceAll(producer, [
            ProducerRecord(topic: "observed", value: good),
            ProducerRecord(topic: "observed", value: good),  // the same event again: a duplicate
            ProducerRecord(topic: "observed", value: Pipeline.envelope(id: "bad id", data: #"{"key":"k","seq":2}"#)),
            ProducerRecord(topic: "observed", value: Pipeline.envelope(id: "o2", data: #"{"key":"k","seq":3,"fail":"twice"}"#)),
        ])
        let metrics = TestMetrics()
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "observed") { _ in logs }
        logger.logLevel = .debug
        let attempts = Mutex(0)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "observed") { event, context in
            if event.payload.fail == "twice" {
                let attempt = attempts.withLock { $0 += 1; return $0 }
                if attempt <= 2 { throw CocoaError(.fileLocking) }
            }
            context.logger.info("handled")
        }
        let running = Pipeline.Running(try Pipeline.consumer(
            cluster: cluster, group: "observed", topics: ["observed"], store: InMemoryDedupeStore(), router: router,
            deadLetterProducer: producer, logger: logger, metricsFactory: metrics))
        try await Support.eventually("all four records to have outcomes") {
            metrics.counterTotal(label: "sluice.records.handled") + metrics.counterTotal(label: "sluice.records.duplicates")
                + metrics.counterTotal(label: "sluice.records.dead_lettered") >= 4
        }
        try await Task.sleep(for: .milliseconds(1_500))  // one more commit interval, so the lag gauge is written
        try await running.stop()

        let topic = [("topic", "observed")]
        #expect(metrics.counterTotal(label: "sluice.records.consumed", dimensions: topic) == 4)
        #expect(metrics.counterTotal(label: "sluice.records.handled", dimensions: topic) == 2)
        #expect(metrics.counterTotal(label: "sluice.records.duplicates", dimensions: topic) == 1)
        #expect(metrics.counterTotal(label: "sluice.records.dead_lettered", dimensions: topic + [("code", "EVENT_ID_INVALID")]) == 1)
        #expect(metrics.counterTotal(label: "sluice.handler.retries") == 2)
        #expect(try metrics.expectTimer("sluice.handler.duration", [("handler", "observed")]).values.count == 2)
        #expect(try metrics.expectGauge("sluice.partition.lag", [("topic", "observed"), ("partition", "0")]).lastValue == 0)

        let handled = try #require(logs.entries.first { "\($0.message)" == "handled" })
        for key in ["kafka.topic", "kafka.partition", "kafka.offset", "event.id", "event.type", "correlation.id", "causation.id", "sluice.handler"] {
            #expect(handled.metadata[key] != nil, "handler log lacks \(key)")
        }
        let rejected = try #require(logs.entries.first { "\($0.message)" == "record rejected" })
        #expect(rejected.metadata["kafka.offset"] == "2")
        #expect(rejected.metadata["error.code"] == "EVENT_ID_INVALID")
        try await producer.close()
    }
}
