import Foundation
import Logging
import Sluice

/// Reads fixed ranges of a topic's partitions, for replays and exports: no consumer group is
/// joined and nothing is committed.
///
/// ``open(bootstrapServers:topics:plan:properties:logger:)`` resolves the plan against the
/// cluster once: starts from offsets, timestamps or the low watermark, ends from offsets,
/// timestamps or the high watermark at that moment (so records produced while reading are left
/// out). ``batches`` then delivers exactly the records of those ranges, in offset order per
/// partition, and finishes when every partition reached its end.
public final class KafkaRangeReader: Sendable {
    /// Per partition, the offsets to read: `lowerBound` first, `upperBound` excluded.
    public let ranges: [TopicPartition: Range<Offset>]
    private let consumer: KafkaConsumer
    private let logger: Logger

    private init(ranges: [TopicPartition: Range<Offset>], consumer: KafkaConsumer, logger: Logger) {
        self.ranges = ranges
        self.consumer = consumer
        self.logger = logger
    }

    /// Resolves `plan` for `topics` and assigns the partitions with something to read.
    ///
    /// - Throws: ``KafkaError`` when the cluster cannot be asked, or a `SluiceError` with
    ///   `SluiceError/Code/replayPlanInvalid` when a topic does not exist or the plan names a
    ///   partition the topic does not have.
    public static func open(
        bootstrapServers: [String], topics: [String], plan: ReplayPlan, properties: [String: String] = [:], logger: Logger
    ) async throws -> KafkaRangeReader {
        let admin = try KafkaAdmin(bootstrapServers: bootstrapServers, properties: properties, logger: logger)
        let counts = try await admin.listTopics()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: nil)
        for (name, value) in properties { configuration.properties[name] = value }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        do {
            var partitions: [TopicPartition] = []
            for topic in topics {
                guard let count = counts[topic] else {
                    throw SluiceError(code: .replayPlanInvalid, message: "topic \(topic) does not exist")
                }
                let numbers = (0..<Int32(count)).filter { plan.partitions?.contains($0) ?? true }
                for named in plan.partitions ?? [] where named >= Int32(count) {
                    throw SluiceError(code: .replayPlanInvalid, message: "topic \(topic) has no partition \(named) (it has \(count))")
                }
                partitions += numbers.map { TopicPartition(topic: topic, partition: $0) }
            }
            var watermarks: [TopicPartition: (low: Offset, high: Offset)] = [:]
            for partition in partitions { watermarks[partition] = try await consumer.watermarks(for: partition) }

            var startTimes: [TopicPartition: Int64] = [:]
            var endTimes: [TopicPartition: Int64] = [:]
            for partition in partitions {
                if case .timestamp(let date) = plan.start(of: partition.partition) { startTimes[partition] = Self.milliseconds(date) }
                // The first record after T ends a range that includes T.
                if case .timestamp(let date) = plan.end(of: partition.partition) { endTimes[partition] = Self.milliseconds(date) + 1 }
            }
            let startsByTime = startTimes.isEmpty ? [:] : try await consumer.offsets(forTimestamps: startTimes)
            let endsByTime = endTimes.isEmpty ? [:] : try await consumer.offsets(forTimestamps: endTimes)

            var ranges: [TopicPartition: Range<Offset>] = [:]
            for partition in partitions {
                let (low, high) = watermarks[partition]!
                let start: Offset
                switch plan.start(of: partition.partition) {
                case .beginning: start = low
                case .offset(let offset): start = max(offset, low)
                case .timestamp: start = startsByTime[partition].flatMap { $0 == .end ? high : $0 } ?? high
                }
                let end: Offset
                switch plan.end(of: partition.partition) {
                case .highWatermark: end = high
                case .offset(let offset): end = min(offset.next, high)
                case .timestamp: end = endsByTime[partition].flatMap { $0 == .end ? high : min($0, high) } ?? high
                }
                ranges[partition] = start..<max(start, end)
            }
            let assignment = ranges.filter { !$0.value.isEmpty }.mapValues(\.lowerBound)
            if !assignment.isEmpty { try await consumer.assign(assignment) }
            logger.debug("replay ranges resolved", metadata: ["ranges": "\(ranges)"])
            return KafkaRangeReader(ranges: ranges, consumer: consumer, logger: logger)
        } catch {
            try? await consumer.close()
            throw error
        }
    }

    /// The records of ``ranges``, in batches; finishes when every partition reached its end.
    /// Read it once.
    ///
    /// A partition ends when the last offset of its range, or any offset past it, was read (a
    /// compacted-away last offset is passed that way), or, for a range ending in offsets that
    /// hold no record for the application (a transaction's commit or abort marker, aborted
    /// records under `read_committed`), when the consumer's position is past the end with every
    /// record below it delivered: checked whenever no batch came for `idleCheckInterval`.
    public var batches: AsyncThrowingStream<[Record], any Error> {
        let ranges = self.ranges
        let consumer = self.consumer
        let logger = self.logger
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.read(ranges, from: consumer, idleCheck: Self.idleCheckInterval, logger: logger) { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// How long the reader waits for a batch before it asks how far the consumer has read.
    static let idleCheckInterval: Duration = .milliseconds(500)

    /// Hands `deliver` the records of `ranges` until every partition reached its end; returns
    /// early when the task is cancelled.
    static func read(
        _ ranges: [TopicPartition: Range<Offset>], from consumer: some RangeReaderConsumer, idleCheck: Duration, logger: Logger,
        deliver: ([Record]) -> Void
    ) async throws {
        var pending = Set(ranges.filter { !$0.value.isEmpty }.keys)
        while !pending.isEmpty && !Task.isCancelled {
            switch try await nextBatch(of: consumer, within: idleCheck) {
            case .batch(let batch):
                var finished: [TopicPartition] = []
                let inRange = batch.filter { record in
                    guard let range = ranges[record.topicPartition] else { return false }
                    // The last offset of the range read (or anything past it: compaction leaves gaps).
                    if record.offset.next >= range.upperBound, pending.remove(record.topicPartition) != nil {
                        finished.append(record.topicPartition)
                    }
                    return range.contains(record.offset)
                }
                if !inRange.isEmpty { deliver(inRange) }
                // Nothing more is wanted from them: stop fetching what lies past their ends.
                if !finished.isEmpty && !pending.isEmpty { await stopFetching(finished, from: consumer, logger: logger) }
            case .idle:
                let positions = try await consumer.drainedPositions(Array(pending))
                let reached = positions.filter { partition, position in ranges[partition].map { position >= $0.upperBound } ?? false }
                if !reached.isEmpty {
                    logger.debug(
                        "partitions read to ends that hold no record (transaction markers)",
                        metadata: ["partitions": "\(reached.keys.sorted())"])
                    pending.subtract(reached.keys)
                    if !pending.isEmpty { await stopFetching(Array(reached.keys), from: consumer, logger: logger) }
                }
            case .ended:
                if Task.isCancelled { return }
                throw KafkaError.clientClosed(
                    "the consumer stopped before the ranges were read (\(pending.count) partition(s) unfinished)")
            }
        }
    }

    /// Pauses partitions whose ranges are read. Only an economy: records past a range's end are
    /// filtered out anyway, so a failed pause is logged and reading goes on.
    private static func stopFetching(_ partitions: [TopicPartition], from consumer: some RangeReaderConsumer, logger: Logger) async {
        do {
            try await consumer.pause(partitions)
        } catch {
            logger.debug("could not pause partitions read to their ends", metadata: ["partitions": "\(partitions)", "error": "\(error)"])
        }
    }

    private enum Wait: Sendable {
        case batch([Record])
        case idle
        case ended
    }

    /// The consumer's next batch, or `.idle` when none came within `timeout`. A batch that arrives
    /// while the wait is given up is returned, never dropped.
    private static func nextBatch(of consumer: some RangeReaderConsumer, within timeout: Duration) async throws -> Wait {
        try await withThrowingTaskGroup(of: Wait.self) { group in
            group.addTask { try await consumer.nextBatch().map(Wait.batch) ?? .ended }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .idle
            }
            var outcome = try await group.next() ?? .ended
            group.cancelAll()
            // The cancelled wait for a batch ends with `.ended`, unless a batch reached it first.
            while let other = try await group.next() {
                if case .batch = other { outcome = other }
            }
            return outcome
        }
    }

    /// The high watermark-based end of each partition (for progress displays).
    public var ends: [TopicPartition: Offset] { ranges.mapValues(\.upperBound) }

    /// Closes the consumer (nothing was committed).
    public func close() async {
        try? await consumer.close()
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000).rounded(.down)) }
}

/// What ``KafkaRangeReader`` needs of its consumer (``KafkaConsumer``; a seam for tests of the
/// end-of-range rules, whose gaps the embedded broker cannot produce: it writes no transaction
/// markers and never compacts).
protocol RangeReaderConsumer: Sendable {
    /// The next batch; `nil` when the consumer stopped or the calling task was cancelled.
    func nextBatch() async throws -> [Record]?
    /// Positions of the partitions whose fetched records were all delivered (see
    /// ``KafkaConsumer/drainedPositions(_:)``).
    func drainedPositions(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Offset]
    /// Stops fetching for `partitions`.
    func pause(_ partitions: [TopicPartition]) async throws
}

extension KafkaConsumer: RangeReaderConsumer {
    func nextBatch() async throws -> [Record]? {
        var iterator = batches.makeAsyncIterator()
        return try await iterator.next()
    }
}
