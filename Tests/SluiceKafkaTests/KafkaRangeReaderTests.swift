import Foundation
import Logging
import Sluice
@testable import SluiceKafka
import Synchronization
import Testing

/// The range reader's end-of-range rules. The embedded broker writes no transaction markers and
/// never compacts, so ranges whose last offsets hold no record are played by a scripted consumer;
/// the position primitive they rely on is checked against the embedded broker.
@Suite("The range reader ends partitions whose last offsets hold no record")
struct KafkaRangeReaderTests {
    typealias Support = KafkaTestSupport

    /// A consumer that delivers scripted batches, then waits (until cancelled) as a real one does
    /// when nothing more is fetched; its positions are scripted too.
    final class ScriptedConsumer: RangeReaderConsumer {
        private struct State {
            var batches: [[Record]]
            var positions: [TopicPartition: Offset]
            var positionQueries = 0
            var paused: Set<TopicPartition> = []
        }
        private let state: Mutex<State>

        init(batches: [[Record]], positions: [TopicPartition: Offset]) {
            state = Mutex(State(batches: batches, positions: positions))
        }

        var positionQueries: Int { state.withLock { $0.positionQueries } }
        var paused: Set<TopicPartition> { state.withLock { $0.paused } }

        func nextBatch() async throws -> [Record]? {
            if let batch = state.withLock({ $0.batches.isEmpty ? nil : $0.batches.removeFirst() }) { return batch }
            // Nothing fetched: wait like the real consumer, until cancelled.
            while !Task.isCancelled { try? await Task.sleep(for: .milliseconds(5)) }
            return nil
        }

        func drainedPositions(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
            state.withLock { state in
                state.positionQueries += 1
                return state.positions.filter { partitions.contains($0.key) }
            }
        }

        func pause(_ partitions: [TopicPartition]) async throws {
            state.withLock { $0.paused.formUnion(partitions) }
        }
    }

    static func records(_ partition: TopicPartition, _ offsets: some Sequence<Int64>) -> [Record] {
        offsets.map { Record(topic: partition.topic, partition: partition.partition, offset: Offset($0), value: Support.bytes("\($0)")) }
    }

    final class Delivered: Sendable {
        let records = Mutex<[Record]>([])
    }

    static func read(_ ranges: [TopicPartition: Range<Offset>], from consumer: ScriptedConsumer) async throws -> [Record] {
        let delivered = Delivered()
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await KafkaRangeReader.read(ranges, from: consumer, idleCheck: .milliseconds(50), logger: Support.logger) { batch in
                    delivered.records.withLock { $0 += batch }
                }
            }
            group.addTask {
                try await Task.sleep(for: .seconds(20))
                throw Support.TimedOut(what: "the range reader to finish")
            }
            try await group.next()
            group.cancelAll()
        }
        return delivered.records.withLock { $0 }
    }

    @Test("A range ending in a transaction marker ends once the position is past it; a partition that reached its last offset stops fetching")
    func endsPastMarker() async throws {
        let marked = TopicPartition(topic: "t", partition: 0)
        let plain = TopicPartition(topic: "t", partition: 1)
        // Partition 0: records 0…8, a commit marker at 9 (high watermark 10). Partition 1: records 0…4.
        let consumer = ScriptedConsumer(
            batches: [Self.records(marked, 0..<5), Self.records(plain, 0..<3), Self.records(marked, 5..<9), Self.records(plain, 3..<5)],
            positions: [marked: 10, plain: 5])
        let read = try await Self.read([marked: 0..<10, plain: 0..<5], from: consumer)
        #expect(read.filter { $0.topicPartition == marked }.map(\.offset.rawValue) == Array(0..<9))
        #expect(read.filter { $0.topicPartition == plain }.map(\.offset.rawValue) == Array(0..<5))
        #expect(consumer.positionQueries >= 1, "partition 0 ended through its position")
        #expect(consumer.paused == [plain], "the partition that reached its last offset stopped fetching while the other was read")
    }

    @Test("A position short of the end, or one the consumer cannot yet vouch for, does not end the range")
    func shortPositionKeepsWaiting() async throws {
        let partition = TopicPartition(topic: "t", partition: 0)
        // Records 0…7 delivered, position 8 (records 8 and 9 not fetched yet): the reader must not end.
        let consumer = ScriptedConsumer(batches: [Self.records(partition, 0..<8)], positions: [partition: 8])
        await #expect(throws: KafkaTestSupport.TimedOut.self) {
            _ = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    try await KafkaRangeReader.read([partition: 0..<10], from: consumer, idleCheck: .milliseconds(20), logger: Support.logger) { _ in }
                    // It returns when cancelled (after the deadline); before that, returning is the bug.
                    if !Task.isCancelled { Issue.record("the reader ended a range it had not read to its end") }
                }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(600))
                    throw Support.TimedOut(what: "records 8 and 9")
                }
                try await group.next()
                group.cancelAll()
            }
        }
        #expect(consumer.positionQueries >= 5, "it kept asking")
    }

    @Test("drainedPositions: no position for a partition while fetched records wait in the buffer; the full position once they were taken")
    func drainedPositionsOnTheBroker() async throws {
        let cluster = try Support.cluster(topics: ["drained": 1])
        let producer = try Support.producer(cluster)
        let partition = TopicPartition(topic: "drained", partition: 0)
        _ = try await Support.produceAll(producer, (0..<50).map { ProducerRecord(topic: "drained", partition: 0, value: Support.bytes("\($0)")) })
        try await producer.close()

        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await consumer.assign([partition: .beginning])
        // Let the poll thread fetch everything into the buffer, then ask before taking anything.
        let deadline = ContinuousClock.now + .seconds(20)
        while consumer.cachedWatermarks(for: partition)?.high != 50 && ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        try await Task.sleep(for: .milliseconds(300))
        let early = try await consumer.drainedPositions([partition])
        #expect(early[partition] == nil, "records wait in the buffer: \(early)")

        let records = try await Support.collect(from: consumer) { $0.count >= 50 }
        #expect(records.count == 50)
        let drained = try await consumer.drainedPositions([partition])
        #expect(drained[partition] == 50)
        try await consumer.close()
    }
}
