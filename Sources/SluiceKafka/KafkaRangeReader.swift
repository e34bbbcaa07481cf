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

    private init(ranges: [TopicPartition: Range<Offset>], consumer: KafkaConsumer) {
        self.ranges = ranges
        self.consumer = consumer
    }

    /// Resolves `plan` for `topics` and assigns the partitions with something to read.
    ///
    /// - Throws: ``KafkaError`` when the cluster cannot be asked, or a ``SluiceError`` with
    ///   ``SluiceError/Code/replayPlanInvalid`` when a topic does not exist or the plan names a
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
            return KafkaRangeReader(ranges: ranges, consumer: consumer)
        } catch {
            try? await consumer.close()
            throw error
        }
    }

    /// The records of ``ranges``, in batches; finishes when every partition reached its end.
    /// Read it once.
    public var batches: AsyncThrowingStream<[Record], any Error> {
        let ranges = self.ranges
        let consumer = self.consumer
        return AsyncThrowingStream { continuation in
            let task = Task {
                var pending = Set(ranges.filter { !$0.value.isEmpty }.keys)
                do {
                    if !pending.isEmpty {
                        for try await batch in consumer.batches {
                            let inRange = batch.filter { record in
                                guard let range = ranges[record.topicPartition] else { return false }
                                // A partition is done once the last offset of its range (or
                                // anything past it: compaction leaves gaps) was read.
                                if record.offset.next >= range.upperBound { pending.remove(record.topicPartition) }
                                return range.contains(record.offset)
                            }
                            if !inRange.isEmpty { continuation.yield(inRange) }
                            if pending.isEmpty || Task.isCancelled { break }
                        }
                    }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
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
