import Logging
import Synchronization

/// Routes records to one `PartitionLane` per assigned partition: strict offset order inside a
/// partition, partitions concurrent with each other, and bounded memory.
///
/// When a lane holds ``Configuration/laneCapacity`` records its partition is paused at the
/// source; when it has drained below ``Configuration/resumeBelow`` the partition is resumed.
/// Pauses and resumes reach the source in the order they were decided.
public final class PartitionDispatcher: Sendable {
    /// Lane bounds.
    public struct Configuration: Sendable {
        /// Records one lane may hold before its partition is paused. Default: 1,000.
        public var laneCapacity: Int = 1_000
        /// A paused partition resumes when its lane holds fewer records than this. Default: 250.
        public var resumeBelow: Int = 250
        /// Queued records a lane hands its processor at once at most, so that the pipeline can
        /// commit them in one store transaction. Default: 100.
        public var maxBatch: Int = 100

        /// The defaults described on each property.
        public init() {}
    }

    private enum FlowCommand: Sendable {
        case pause(TopicPartition)
        case resume(TopicPartition)
    }

    private let configuration: Configuration
    private let watermarks: OffsetWatermarks
    private let processor: PartitionLane.Processor
    private let logger: Logger
    private let lanes = Mutex<[TopicPartition: PartitionLane]>([:])
    private let flowCommands: AsyncStream<FlowCommand>.Continuation
    private let flowTask: Task<Void, Never>

    /// A dispatcher whose lanes hand their processor one record at a time.
    ///
    /// - Parameters:
    ///   - configuration: Lane capacity and batching. Default: ``Configuration/init()``.
    ///   - watermarks: Where each record's outcome moves its partition's committable offset.
    ///   - flowControl: Pauses a partition whose lane is full and resumes it when it drains.
    ///   - logger: Where the lanes log.
    ///   - processor: Gives each record its outcome. It is called for one record of a partition
    ///     at a time, in offset order.
    public convenience init(
        configuration: Configuration = Configuration(),
        watermarks: OffsetWatermarks,
        flowControl: any PartitionFlowControl,
        logger: Logger,
        processor: @escaping @Sendable (Record) async -> RecordOutcome
    ) {
        var configuration = configuration
        configuration.maxBatch = 1
        self.init(configuration: configuration, watermarks: watermarks, flowControl: flowControl, logger: logger) { records, _ in
            [await processor(records[0])]
        }
    }

    /// A dispatcher whose lanes hand their processor every queued record of a partition at once.
    ///
    /// - Parameters:
    ///   - configuration: Lane capacity and batching. Default: ``Configuration/init()``.
    ///   - watermarks: Where each record's outcome moves its partition's committable offset.
    ///   - flowControl: Pauses a partition whose lane is full and resumes it when it drains.
    ///   - logger: Where the lanes log.
    ///   - processor: Gives consecutive records of one partition (at most
    ///     ``Configuration/maxBatch``, in offset order) one outcome each, in order; after an
    ///     ``RecordOutcome/abandoned`` one, every later one must be abandoned too. It may report
    ///     outcomes (index, outcome) through its second argument as they become durable, so the
    ///     partition's watermark moves before the batch is done. It is called for one batch of a
    ///     partition at a time. ``EventPipeline/process(_:reporting:)`` is one.
    public init(
        configuration: Configuration = Configuration(),
        watermarks: OffsetWatermarks,
        flowControl: any PartitionFlowControl,
        logger: Logger,
        batchProcessor processor: @escaping @Sendable ([Record], @escaping @Sendable (Int, RecordOutcome) -> Void) async -> [RecordOutcome]
    ) {
        self.configuration = configuration
        self.watermarks = watermarks
        self.processor = processor
        self.logger = logger
        let (commands, continuation) = AsyncStream.makeStream(of: FlowCommand.self)
        self.flowCommands = continuation
        // One task sends every pause and resume, so they reach the source in order.
        self.flowTask = Task {
            for await command in commands {
                do {
                    switch command {
                    case .pause(let partition): try await flowControl.pause([partition])
                    case .resume(let partition): try await flowControl.resume([partition])
                    }
                } catch {
                    logger.warning("flow control failed", metadata: ["command": "\(command)", "error": "\(error)"])
                }
            }
        }
    }

    deinit {
        flowCommands.finish()
    }

    /// Creates lanes for newly assigned partitions.
    public func assign(_ partitions: [TopicPartition]) {
        lanes.withLock { lanes in
            for partition in partitions where lanes[partition] == nil {
                lanes[partition] = PartitionLane(
                    partition: partition, watermarks: watermarks, resumeBelow: configuration.resumeBelow,
                    maxBatch: configuration.maxBatch, processor: processor
                ) { [flowCommands] partition in flowCommands.yield(.resume(partition)) }
            }
        }
    }

    /// Hands a batch to the lanes, keeping each partition's order, and pauses partitions whose
    /// lanes are full. Records of partitions without a lane (revoked meanwhile) are dropped: they
    /// have no outcome and will be delivered again from the commit.
    public func dispatch(_ batch: [Record]) {
        var byPartition: [TopicPartition: [Record]] = [:]
        for record in batch { byPartition[record.topicPartition, default: []].append(record) }
        let current = lanes.withLock { $0 }
        for (partition, records) in byPartition {
            guard let lane = current[partition] else {
                logger.debug("dropping records of a partition without a lane", metadata: ["kafka.partition": "\(partition)"])
                continue
            }
            let depth = lane.enqueue(records)
            if depth >= configuration.laneCapacity && !lane.isPaused {
                lane.isPaused = true
                flowCommands.yield(.pause(partition))
            }
        }
    }

    /// Stops the lanes of `partitions`: each finishes its in-flight record (cancelled at
    /// `deadline`), queued records are dropped, and the lanes are removed.
    ///
    /// - Returns: The partitions' watermarks after the lanes stopped, to commit before letting go.
    public func revoke(_ partitions: [TopicPartition], deadline: ContinuousClock.Instant) async -> [TopicPartition: Offset] {
        let stopping = lanes.withLock { lanes in partitions.compactMap { lanes.removeValue(forKey: $0) } }
        for lane in stopping { lane.stopTaking() }
        await withTaskGroup(of: Void.self) { group in
            for lane in stopping { group.addTask { await lane.stop(drainFirst: false, deadline: deadline) } }
        }
        var positions: [TopicPartition: Offset] = [:]
        for partition in partitions { positions[partition] = watermarks.position(of: partition) }
        return positions
    }

    /// Graceful shutdown: every lane processes what it holds until `deadline`, then stops as in
    /// ``revoke(_:deadline:)``.
    public func drainAll(deadline: ContinuousClock.Instant) async {
        let stopping = lanes.withLock { lanes in
            defer { lanes.removeAll() }
            return Array(lanes.values)
        }
        await withTaskGroup(of: Void.self) { group in
            for lane in stopping { group.addTask { await lane.stop(drainFirst: true, deadline: deadline) } }
        }
        flowCommands.finish()
    }

    /// Partitions that currently have a lane.
    public var assignedPartitions: Set<TopicPartition> { lanes.withLock { Set($0.keys) } }

    /// Records waiting in each lane.
    public var laneDepths: [TopicPartition: Int] { lanes.withLock { $0.mapValues(\.depth) } }

    /// What one lane holds at a moment.
    public struct LaneStatus: Sendable, Hashable {
        /// Records waiting behind the ones in flight.
        public var queued: Int
        /// The offsets of the batch handed to the processor and not yet finished, if any. Records
        /// of it below the partition's watermark already have their outcomes.
        public var inFlight: ClosedRange<Offset>?
        /// Whether the lane's partition is paused at the source because the lane is full.
        public var isPaused: Bool
    }

    /// What each lane holds right now (for status pages: read on request, not per record).
    public var laneStatus: [TopicPartition: LaneStatus] {
        let current = lanes.withLock { $0 }
        return current.mapValues(\.status)
    }
}
