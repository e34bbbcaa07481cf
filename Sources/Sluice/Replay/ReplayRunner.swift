import Foundation
import Logging
import Synchronization

/// Runs history through the pipeline: record batches from any source (a Kafka range, a snapshot
/// file, an array) go through the same dispatcher and ``EventPipeline`` as live records, and the
/// runner reports what became of each.
///
/// It commits nothing anywhere: the pipeline it is given should be configured for replay
/// (``EventPipeline/Configuration/isReplay`` on, ``EventPipeline/Configuration/storesOffsets``
/// off; ``ReplayRunner/replayConfiguration(group:dedupe:dryRun:)`` makes one).
public struct ReplayRunner<Store: DedupeStore>: Sendable {
    /// How the runner works.
    public struct Configuration: Sendable {
        /// Lane bounds; the runner stops reading while a lane holds more than
        /// ``PartitionDispatcher/Configuration/laneCapacity`` records.
        public var dispatcher = PartitionDispatcher.Configuration()
        /// Where to keep the resume point, if anywhere. Default: none.
        public var checkpointPath: String?
        /// How often progress is reported and the checkpoint written. Default: 1 s.
        public var progressInterval: Duration = .seconds(1)

        /// The defaults described on each property.
        public init() {}
    }

    private let pipeline: EventPipeline<Store>
    private let configuration: Configuration
    private let logger: Logger

    /// A runner feeding `pipeline` (configured for replay: see ``replayConfiguration(group:dedupe:dryRun:)``).
    public init(pipeline: EventPipeline<Store>, configuration: Configuration = Configuration(), logger: Logger) {
        self.pipeline = pipeline
        self.configuration = configuration
        self.logger = logger
    }

    /// A pipeline configuration for a replay of `group`'s history.
    public static func replayConfiguration(
        group: String, dedupe: EventPipeline<Store>.DedupeMode = .respect, dryRun: Bool = false
    ) -> EventPipeline<Store>.Configuration {
        var configuration = EventPipeline<Store>.Configuration(group: group)
        configuration.isReplay = true
        configuration.storesOffsets = false
        configuration.dedupe = dedupe
        configuration.dryRun = dryRun
        return configuration
    }

    /// Replays every batch of `source` and returns the summary once every record has an outcome.
    ///
    /// - Parameters:
    ///   - source: The records to replay, in batches; a partition's records in offset order.
    ///   - ends: Per partition, the offset after the last record to replay, for progress.
    ///   - progress: Called every ``Configuration/progressInterval`` and once at the end.
    /// - Returns: The summary; `interrupted` when the task was cancelled or the source failed
    ///   (the source's error is logged and kept in ``ReplaySummary/failure``; records read before
    ///   it have their outcomes).
    public func run<Source: AsyncSequence>(
        _ source: Source, ends: [TopicPartition: Offset] = [:], progress: (@Sendable (ReplayProgress) -> Void)? = nil
    ) async -> ReplaySummary where Source.Element == [Record] {
        let tally = Tally()
        let watermarks = OffsetWatermarks()
        let pipeline = self.pipeline
        let dispatcher = PartitionDispatcher(
            configuration: configuration.dispatcher, watermarks: watermarks, flowControl: NoFlowControl(), logger: logger,
            batchProcessor: { records, report in
                let outcomes = await pipeline.process(records, reporting: report)
                tally.summary.withLock { summary in
                    for (record, outcome) in zip(records, outcomes) { summary.add(record, outcome) }
                }
                return outcomes
            })
        var checkpoint = ReplayCheckpoint()
        if let path = configuration.checkpointPath {
            do {
                checkpoint = try ReplayCheckpoint.load(from: path)
            } catch {
                logger.error("cannot read the replay checkpoint; starting over", metadata: ["error": "\(error)"])
            }
            if !checkpoint.positions.isEmpty {
                logger.notice("resuming from the replay checkpoint", metadata: ["positions": "\(checkpoint.positions)"])
            }
        }
        let resumedFrom = checkpoint
        let reporter = Reporter(
            tally: tally, watermarks: watermarks, ends: ends, checkpointPath: configuration.checkpointPath, resumedFrom: resumedFrom,
            progress: progress, logger: logger)
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: configuration.progressInterval)
                if Task.isCancelled { break }
                reporter.report(final: false)
            }
        }
        var interrupted = false
        var failure: String?
        var passedOver = 0
        var assigned = Set<TopicPartition>()
        do {
            for try await batch in source {
                if Task.isCancelled {
                    interrupted = true
                    break
                }
                let fresh = batch.filter { !resumedFrom.covers($0) }
                passedOver += batch.count - fresh.count
                let partitions = Set(fresh.map(\.topicPartition)).subtracting(assigned)
                if !partitions.isEmpty {
                    dispatcher.assign(Array(partitions))
                    assigned.formUnion(partitions)
                }
                dispatcher.dispatch(fresh)
                // Backpressure: stop pulling from the source while a lane is full.
                while (dispatcher.laneDepths.values.max() ?? 0) >= configuration.dispatcher.laneCapacity, !Task.isCancelled {
                    try? await Task.sleep(for: .milliseconds(2))
                }
            }
        } catch {
            logger.error("the replay's source failed", metadata: ["error": "\(error)"])
            interrupted = true
            failure = "\(error)"
        }
        if Task.isCancelled { interrupted = true }
        // Finish what was read; an interrupted replay stops lanes after their in-flight records.
        let deadline: ContinuousClock.Instant = interrupted ? .now + .seconds(5) : .now + .seconds(86_400 * 365)
        await Task { await dispatcher.drainAll(deadline: deadline) }.value
        ticker.cancel()
        reporter.report(final: true)
        var summary = tally.summary.withLock { $0 }
        summary.interrupted = interrupted
        summary.failure = failure
        summary.dryRun = pipeline.isDryRun
        summary.alreadyReplayed = passedOver
        return summary
    }
}

/// Replays read finite sources: pausing is done by not pulling, not at the source.
private struct NoFlowControl: PartitionFlowControl {
    func pause(_ partitions: [TopicPartition]) async throws {}
    func resume(_ partitions: [TopicPartition]) async throws {}
}

/// The outcomes counted so far, shared by the lanes and the reporter.
private final class Tally: Sendable {
    let summary = Mutex(ReplaySummary())
}

/// Reports progress and keeps the checkpoint.
private final class Reporter: Sendable {
    let tally: Tally
    let watermarks: OffsetWatermarks
    let ends: [TopicPartition: Offset]
    let checkpointPath: String?
    let resumedFrom: ReplayCheckpoint
    let progress: (@Sendable (ReplayProgress) -> Void)?
    let logger: Logger

    init(
        tally: Tally, watermarks: OffsetWatermarks, ends: [TopicPartition: Offset], checkpointPath: String?,
        resumedFrom: ReplayCheckpoint, progress: (@Sendable (ReplayProgress) -> Void)?, logger: Logger
    ) {
        self.tally = tally
        self.watermarks = watermarks
        self.ends = ends
        self.checkpointPath = checkpointPath
        self.resumedFrom = resumedFrom
        self.progress = progress
        self.logger = logger
    }

    func report(final: Bool) {
        let summary = tally.summary.withLock { $0 }
        var positions = resumedFrom.positions
        var partitions: [TopicPartition: ReplayProgress.PartitionProgress] = [:]
        for partition in Set(summary.partitions.keys).union(ends.keys) {
            let position = watermarks.position(of: partition)
            if let position { positions[partition] = max(position, positions[partition] ?? position) }
            partitions[partition] = .init(done: summary.partitions[partition]?.read ?? 0, position: position, end: ends[partition])
        }
        if let checkpointPath {
            do {
                try ReplayCheckpoint(positions: positions).save(to: checkpointPath)
            } catch {
                logger.warning("cannot write the replay checkpoint", metadata: ["error": "\(error)"])
            }
        }
        progress?(ReplayProgress(partitions: partitions, isFinal: final))
    }
}
