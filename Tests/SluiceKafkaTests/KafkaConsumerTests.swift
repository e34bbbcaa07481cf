import Foundation
import Logging
import Sluice
import SluiceKafka
import Synchronization
import Testing

@Suite("Kafka consumer and producer against the embedded cluster", .serialized)
struct KafkaConsumerTests {
    typealias Support = KafkaTestSupport

    /// Keys, values and headers chosen to catch lossy conversions: binary bytes, empty vs null.
    static func record(_ index: Int, topic: String, partitions: Int32) -> ProducerRecord {
        let binary: [UInt8] = [0, 255, 128, UInt8(index % 256), 10, 13]
        return ProducerRecord(
            topic: topic,
            partition: Int32(index) % partitions,
            key: index % 97 == 0 ? nil : Support.bytes("key-\(index)"),
            value: index % 101 == 0 ? [] : Support.bytes("value-\(index)-") + binary + Support.bytes(String(repeating: "x", count: index % 50)),
            headers: [
                RecordHeader(name: "seq", string: String(index)),
                RecordHeader(name: "binary", value: binary),
                RecordHeader(name: "null-valued", value: nil),
                RecordHeader(name: "seq", string: "repeated-\(index)"),
            ])
    }

    @Test("10,000 records with keys and headers round-trip byte-exact, in offset order per partition")
    func roundTrip() async throws {
        let cluster = try Support.cluster(topics: ["round-trip": 4])
        let producer = try Support.producer(cluster)
        let sent = (0..<10_000).map { Self.record($0, topic: "round-trip", partitions: 4) }
        let reports = try await Support.produceAll(producer, sent)

        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "round-trip"), logger: Support.logger)
        try await consumer.subscribe(["round-trip"])
        let received = try await Support.collect(from: consumer) { $0.count >= 10_000 }
        #expect(received.count == 10_000)

        // Each delivery report says where the record went; the consumer must return exactly it there.
        var expected: [TopicPartition: [Offset: ProducerRecord]] = [:]
        for (record, report) in zip(sent, reports) {
            expected[report.topicPartition, default: [:]][report.offset] = record
        }
        var lastOffset: [TopicPartition: Offset] = [:]
        for record in received {
            let partition = record.topicPartition
            if let previous = lastOffset[partition] { #expect(record.offset == previous.next) } else { #expect(record.offset == 0) }
            lastOffset[partition] = record.offset
            let original = try #require(expected[partition]?[record.offset])
            #expect(record.key == original.key)
            #expect(record.value == original.value)
            #expect(record.headers == original.headers)
            #expect(record.timestamp?.type == .createTime)
        }
        try await consumer.close()
        try await producer.close()
    }

    @Test("Commit, close, reopen: consumption resumes exactly at the committed offset")
    func resumesAtCommittedOffset() async throws {
        let cluster = try Support.cluster(topics: ["resume": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<100).map {
            ProducerRecord(topic: "resume", partition: 0, value: Support.bytes("r\($0)"))
        })
        let partition = TopicPartition(topic: "resume", partition: 0)

        let first = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "resume"), logger: Support.logger)
        try await first.subscribe(["resume"])
        let head = try await Support.collect(from: first) { $0.count >= 40 }
        #expect(head.first?.offset == 0)
        try await first.commit([partition: Offset(40)])
        #expect(try await first.committedOffsets(for: [partition])[partition] == Offset(40))
        try await first.close()

        let second = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "resume"), logger: Support.logger)
        try await second.subscribe(["resume"])
        let rest = try await Support.collect(from: second) { $0.count >= 60 }
        #expect(rest.map(\.offset) == (40..<100).map { Offset(Int64($0)) })
        #expect(rest.first.map { String(decoding: $0.value ?? [], as: UTF8.self) } == "r40")

        // An asynchronous commit reports the broker's answer too.
        let answer = Mutex<Result<[TopicPartition: Offset], KafkaError>?>(nil)
        second.commitAsync([partition: Offset(100)]) { result in answer.withLock { $0 = result } }
        try await Support.eventually("the async commit's result") { answer.withLock { $0 != nil } }
        #expect(try answer.withLock { try $0?.get() }?[partition] == Offset(100))
        #expect(try await second.committedOffsets(for: [partition])[partition] == Offset(100))
        try await second.close()
        try await producer.close()
    }

    @Test("Pause stops delivery for that partition only; resume continues where it stopped")
    func pauseAndResume() async throws {
        let cluster = try Support.cluster(topics: ["pause": 2])
        let producer = try Support.producer(cluster)
        func produce(_ range: Range<Int>) async throws {
            try await Support.produceAll(producer, range.flatMap { index in
                (0..<2).map { ProducerRecord(topic: "pause", partition: Int32($0), value: Support.bytes("p\($0)-\(index)")) }
            })
        }
        try await produce(0..<200)
        let p0 = TopicPartition(topic: "pause", partition: 0)
        let p1 = TopicPartition(topic: "pause", partition: 1)

        var configuration = Support.consumerConfiguration(cluster, group: nil)
        configuration.maxBatchSize = 10
        configuration.properties["fetch.max.bytes"] = "2048"
        configuration.properties["message.max.bytes"] = "2048"
        configuration.properties["max.partition.fetch.bytes"] = "512"
        let consumer = try KafkaConsumer(configuration: configuration, logger: Support.logger)
        try await consumer.assign([p0: .beginning, p1: .beginning])

        var seen = try await Support.collect(from: consumer) { records in
            records.contains { $0.partition == 0 } && records.contains { $0.partition == 1 }
        }
        try await consumer.pause([p0])
        let seenBeforePause = seen.filter { $0.partition == 0 }.count
        try await produce(200..<300)
        let p1SeenBeforePause = seen.filter { $0.partition == 1 }.count
        let whilePaused = try await Support.collect(from: consumer) { records in
            records.filter { $0.partition == 1 }.count + p1SeenBeforePause >= 300
        }
        #expect(whilePaused.allSatisfy { $0.partition == 1 }, "no record of the paused partition is delivered")
        seen += whilePaused

        try await consumer.resume([p0])
        let afterResume = try await Support.collect(from: consumer) { records in
            records.filter { $0.partition == 0 }.count + seenBeforePause >= 300
        }
        seen += afterResume
        let p0Offsets = seen.filter { $0.partition == 0 }.map(\.offset.rawValue)
        let p1Offsets = seen.filter { $0.partition == 1 }.map(\.offset.rawValue)
        #expect(p0Offsets == Array(0..<300), "partition 0 continues exactly where it stopped: no gap, no repeat")
        #expect(p1Offsets == Array(0..<300))
        try await consumer.close()
        try await producer.close()
    }

    @Test("Watermarks and offsets for timestamps return the right values")
    func watermarksAndOffsetsForTimes() async throws {
        let cluster = try Support.cluster(topics: ["times": 2])
        let producer = try Support.producer(cluster)
        let base: Int64 = 1_700_000_000_000
        // Partition 0: timestamps base, base+1000, …; partition 1 stays empty.
        try await Support.produceAll(producer, (0..<10).map {
            ProducerRecord(topic: "times", partition: 0, value: Support.bytes("t\($0)"), timestampMilliseconds: base + Int64($0) * 1_000)
        })
        let p0 = TopicPartition(topic: "times", partition: 0)
        let p1 = TopicPartition(topic: "times", partition: 1)
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)

        let marks0 = try await consumer.watermarks(for: p0)
        #expect(marks0.low == 0 && marks0.high == 10)
        let marks1 = try await consumer.watermarks(for: p1)
        #expect(marks1.low == 0 && marks1.high == 0)

        let exact = try await consumer.offsets(forTimestamps: [p0: base + 3_000])
        #expect(exact[p0] == Offset(3))
        let between = try await consumer.offsets(forTimestamps: [p0: base + 3_500])
        #expect(between[p0] == Offset(4), "the first record at or after the time")
        let before = try await consumer.offsets(forTimestamps: [p0: base - 1])
        #expect(before[p0] == Offset(0))
        let after = try await consumer.offsets(forTimestamps: [p0: base + 60_000])
        #expect(after[p0] == Offset.end, "no record that recent")

        // Reading from the offset found gives the record with that timestamp.
        try await consumer.assign([p0: try #require(exact[p0])])
        let records = try await Support.collect(from: consumer) { !$0.isEmpty }
        #expect(records.first?.timestamp == RecordTimestamp(milliseconds: base + 3_000, type: .createTime))
        try await consumer.close()
        try await producer.close()
    }

    @Test("Seek moves a partition back and delivery continues at the new offset")
    func seek() async throws {
        let cluster = try Support.cluster(topics: ["seek": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<50).map { ProducerRecord(topic: "seek", partition: 0, value: Support.bytes("s\($0)")) })
        let p0 = TopicPartition(topic: "seek", partition: 0)
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await consumer.assign([p0: .beginning])
        _ = try await Support.collect(from: consumer) { $0.count >= 50 }
        try await consumer.seek([p0: Offset(20)])
        let again = try await Support.collect(from: consumer) { $0.count >= 30 }
        #expect(again.map(\.offset.rawValue) == Array(20..<50))
        try await consumer.close()
        try await producer.close()
    }

    @Test("Admin lists topics with their partition counts; topic creation reports a missing controller as an error")
    func admin() async throws {
        let cluster = try Support.cluster(topics: ["existing": 3, "other": 7])
        let admin = try KafkaAdmin(bootstrapServers: [cluster.bootstrapServers], logger: Support.logger)
        let topics = try await admin.listTopics()
        #expect(topics["existing"] == 3)
        #expect(topics["other"] == 7)
        // librdkafka's mock cluster has no controller, so CreateTopics cannot succeed there; what
        // matters is that the failure is reported, not swallowed or hung on.
        let error = await #expect(throws: KafkaError.self) {
            try await admin.createTopics([.init(name: "created", partitions: 5)], timeout: .seconds(2))
        }
        #expect(error?.isRetriable == true)
    }
}
