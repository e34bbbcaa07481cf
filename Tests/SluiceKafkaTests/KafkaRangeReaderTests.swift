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

    static func read(
        _ ranges: [TopicPartition: Range<Offset>], checks: [TopicPartition: TimestampLookupCheck] = [:], from consumer: ScriptedConsumer,
        delivered: Delivered = Delivered()
    ) async throws -> [Record] {
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask {
                try await KafkaRangeReader.read(ranges, checks: checks, from: consumer, idleCheck: .milliseconds(50), logger: Support.logger) { batch in
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

/// The checks of what the broker answered for timestamps (see `TimestampLookupCheck`). The embedded
/// broker has no time index (Sluice scans the log for it, and the scan answers truly), so the
/// broker that lies is played by scripted answers and a scripted consumer.
@Suite("The range reader holds the records it reads against the broker's by-timestamp answers")
struct KafkaRangeReaderCheckTests {
    typealias Scripted = KafkaRangeReaderTests.ScriptedConsumer
    static let partition = TopicPartition(topic: "t", partition: 0)
    static let base: Int64 = 1_795_000_000_000
    static func date(_ seconds: Int64) -> Date { Date(timeIntervalSince1970: Double(base / 1_000 + seconds)) }

    /// Records at `offsets`, stamped `base + seconds` (one `seconds` value per offset).
    static func stamped(_ offsets: [Int64], seconds: [Int64]) -> [Record] {
        zip(offsets, seconds).map { offset, second in
            Record(
                topic: partition.topic, partition: partition.partition, offset: Offset(offset),
                timestamp: RecordTimestamp(milliseconds: base + second * 1_000, type: .createTime), value: Array("\(offset)".utf8))
        }
    }

    /// A partition of 50 records stamped `base + offset` seconds, replayed from 20 s to 29 s.
    static func resolve(startAnswer: Offset?, endAnswer: Offset?) -> (range: Range<Offset>, check: TimestampLookupCheck?) {
        KafkaRangeReader.resolve(
            start: .timestamp(date(20)), end: .timestamp(date(29)), low: 0, high: 50, startAnswer: startAnswer, endAnswer: endAnswer)
    }

    static func contradiction(_ error: (any Error)?) -> SluiceError? {
        guard let error = error as? SluiceError, error.code == .replayTimestampLookupContradicted else { return nil }
        return error
    }

    @Test("A broker answering offset 0 for every time: the empty range it gives is checked by reading the record at 0, which contradicts it, and nothing is delivered")
    func offsetZeroForEveryTime() async throws {
        let resolved = Self.resolve(startAnswer: 0, endAnswer: 0)
        #expect(resolved.range.isEmpty)
        let check = try #require(resolved.check)
        #expect(check.probe == 0..<1, "the record at the offset given for the start is read")
        let delivered = KafkaRangeReaderTests.Delivered()
        let error = await #expect(throws: SluiceError.self) {
            _ = try await KafkaRangeReaderTests.read(
                [Self.partition: resolved.range], checks: [Self.partition: check],
                from: Scripted(batches: [Self.stamped([0, 1, 2], seconds: [0, 1, 2])], positions: [:]), delivered: delivered)
        }
        let contradiction = try #require(Self.contradiction(error), "\(String(describing: error))")
        #expect(contradiction.message.contains("t[0]"), "\(contradiction.message)")
        #expect(contradiction.message.contains("gave offset 0"), "\(contradiction.message)")
        #expect(contradiction.message.contains(TimestampLookupCheck.text(Self.base)), "the record's timestamp: \(contradiction.message)")
        #expect(contradiction.message.contains(TimestampLookupCheck.text(Self.base + 20_000)), "the time asked for: \(contradiction.message)")
        #expect(delivered.records.withLock { $0 }.isEmpty)
    }

    @Test("A start answer whose record is stamped before the start stops the read at its first record, before anything is delivered")
    func startContradicted() async throws {
        // The broker says offset 5 for 20 s, and 30 for the end: the record at 5 is stamped 5 s.
        let resolved = Self.resolve(startAnswer: 5, endAnswer: 30)
        #expect(resolved.range == 5..<30)
        let delivered = KafkaRangeReaderTests.Delivered()
        let error = await #expect(throws: SluiceError.self) {
            _ = try await KafkaRangeReaderTests.read(
                [Self.partition: resolved.range], checks: [Self.partition: try #require(resolved.check)],
                from: Scripted(batches: [Self.stamped(Array(5..<15), seconds: Array(5..<15))], positions: [:]), delivered: delivered)
        }
        #expect(Self.contradiction(error)?.message.contains("for --from-timestamp") == true, "\(String(describing: error))")
        #expect(delivered.records.withLock { $0 }.isEmpty)
    }

    @Test("A record of the range stamped after the end contradicts the end answer (every record before it must be at or before the end)")
    func endContradicted() async throws {
        let resolved = Self.resolve(startAnswer: 20, endAnswer: 40)
        #expect(resolved.range == 20..<40)
        let error = await #expect(throws: SluiceError.self) {
            _ = try await KafkaRangeReaderTests.read(
                [Self.partition: resolved.range], checks: [Self.partition: try #require(resolved.check)],
                from: Scripted(batches: [Self.stamped(Array(20..<40), seconds: Array(20..<40))], positions: [:]))
        }
        let message = try #require(Self.contradiction(error)).message
        #expect(message.contains("for --to-timestamp") && message.contains("record at 30 is stamped"), "\(message)")
    }

    @Test("CreateTime out of order is not a contradiction: later records may be stamped before the start; the record past the end is stamped after it")
    func honestDisorder() async throws {
        let resolved = Self.resolve(startAnswer: 20, endAnswer: 25)
        // 20: 20 s; 21: 3 s (a late producer); 22…24: 27…29 s; 25 (past the range): 31 s.
        let records = try await KafkaRangeReaderTests.read(
            [Self.partition: resolved.range], checks: [Self.partition: try #require(resolved.check)],
            from: Scripted(batches: [Self.stamped([20, 21, 22, 23, 24, 25], seconds: [20, 3, 27, 28, 29, 31])], positions: [:]))
        #expect(records.map(\.offset.rawValue) == [20, 21, 22, 23, 24])
    }

    @Test("A true empty answer (no record in the time range) is read once to check it, and delivers nothing")
    func honestEmpty() async throws {
        let resolved = Self.resolve(startAnswer: 30, endAnswer: 30)
        #expect(resolved.range.isEmpty && resolved.check?.probe == 30..<31)
        let records = try await KafkaRangeReaderTests.read(
            [Self.partition: resolved.range], checks: [Self.partition: try #require(resolved.check)],
            from: Scripted(batches: [Self.stamped([30, 31], seconds: [35, 36])], positions: [:]))
        #expect(records.isEmpty)
    }

    @Test("Ranges by offset are not checked, and \"no record that recent\" reads nothing")
    func nothingToCheck() {
        let byOffset = KafkaRangeReader.resolve(start: .offset(3), end: .offset(9), low: 0, high: 50, startAnswer: nil, endAnswer: nil)
        #expect(byOffset.range == 3..<10 && byOffset.check == nil)
        let tooLate = Self.resolve(startAnswer: .end, endAnswer: .end)
        #expect(tooLate.range.isEmpty && tooLate.check?.probe == nil)
    }
}
