import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import Synchronization

/// A consumer service: Kafka in, the envelope decoder, one ordered lane per partition, handlers
/// inside the dedupe store, poison records to the dead-letter topic, and commits that never run
/// ahead of a durable outcome.
///
/// Run it in a `ServiceGroup`; on graceful shutdown (SIGTERM) it stops fetching, lets the lanes
/// drain for ``Configuration/shutdownTimeout``, commits, and leaves the group.
///
/// The commit invariant: the offset after record N of a partition is committed only when every
/// record up to N has a durable outcome (handled, skipped as a duplicate or by policy, or
/// dead-lettered with the broker's acknowledgement).
public final class EventConsumer<Store: DedupeStore>: Service {
    /// How the service consumes.
    public struct Configuration: Sendable {
        /// The Kafka consumer; its `groupID` is required.
        public var consumer: KafkaConsumerConfiguration
        /// Topics to subscribe to.
        public var topics: [String]
        /// Retries, dead letters, unknown-type policy. Its `group` is the consumer's group.
        public var pipeline: EventPipeline<Store>.Configuration
        /// Lane bounds.
        public var dispatcher = PartitionDispatcher.Configuration()
        /// How often watermarks are committed. Default: 1 s.
        public var commitInterval: Duration = .seconds(1)
        /// How long a revocation waits for in-flight records before abandoning them. Default: 30 s.
        public var revocationTimeout: Duration = .seconds(30)
        /// How long graceful shutdown lets lanes drain before it stops them. Default: 30 s.
        public var shutdownTimeout: Duration = .seconds(30)
        /// How long processed-event records are kept, pruned in the background; `nil` prunes
        /// nothing (another process prunes the shared store). Default: `ProcessedEventRetention/init(horizon:interval:)`.
        public var retention: ProcessedEventRetention? = ProcessedEventRetention()
        /// How often the parked keys are counted in the store for the `sluice.parked.keys` gauge,
        /// when parking is on for a topic (a release in another process changes them); the first
        /// count is at start. Default: 30 s.
        public var parkedKeysInterval: Duration = .seconds(30)

        /// A consumer of `topics` with `consumer`'s Kafka settings and the defaults described on each property.
        public init(consumer: KafkaConsumerConfiguration, topics: [String]) {
            self.consumer = consumer
            self.topics = topics
            self.pipeline = .init(group: consumer.groupID ?? "")
        }
    }

    private let configuration: Configuration
    private let consumer: KafkaConsumer
    private let dispatcher: PartitionDispatcher
    private let pipeline: EventPipeline<Store>
    private let watermarks: OffsetWatermarks
    private let store: Store
    private let logger: Logger
    private let committing = Mutex<(inFlight: Bool, revoking: Int)>((false, 0))
    private let metricsFactory: any MetricsFactory
    private let lagGauges = Mutex<[TopicPartition: Gauge]>([:])
    private let failedCommits: Counter
    private let membership = Mutex(GroupMembership())

    /// Creates the service (and its Kafka consumer; nothing is fetched before ``run()``).
    ///
    /// - Parameters:
    ///   - configuration: The consumer's and the pipeline's settings; the consumer group is required.
    ///   - decoder: Decodes and validates each record's envelope against the service's schemas.
    ///   - upcasters: Turn older payload versions into the ones handlers declare.
    ///   - router: The handlers, by event type.
    ///   - store: The dedupe store the handlers' transactions run in; it also holds the offsets.
    ///   - deadLetterSink: Where poison records go; usually a ``KafkaDeadLetterSink``.
    ///   - logger: Where the consumer and the pipeline log.
    ///   - metricsFactory: Where the `sluice.*` metrics go. Default: the bootstrapped metrics system.
    /// - Throws: ``KafkaError`` for a configuration librdkafka refuses, or a missing group.
    public init(
        configuration: Configuration,
        decoder: EnvelopeDecoder,
        upcasters: UpcasterChain,
        router: EventRouter<Store.Transaction>,
        store: Store,
        deadLetterSink: any DeadLetterSink,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory
    ) throws(KafkaError) {
        guard let group = configuration.consumer.groupID, !group.isEmpty else {
            throw KafkaError.invalidArgument("an EventConsumer needs a consumer group")
        }
        var configuration = configuration
        configuration.pipeline.group = group
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.metricsFactory = metricsFactory
        self.failedCommits = Counter(label: "sluice.commits.failed", factory: metricsFactory)
        let watermarks = OffsetWatermarks()
        self.watermarks = watermarks
        let pipeline = EventPipeline(
            configuration: configuration.pipeline, decoder: decoder, upcasters: upcasters, router: router,
            store: store, deadLetterSink: deadLetterSink, logger: logger, metricsFactory: metricsFactory)
        self.pipeline = pipeline
        let bridge = RebalanceBridge()
        self.consumer = try KafkaConsumer(configuration: configuration.consumer, rebalanceListener: bridge, logger: logger)
        self.dispatcher = PartitionDispatcher(
            configuration: configuration.dispatcher, watermarks: watermarks, flowControl: consumer, logger: logger,
            batchProcessor: { records, report in await pipeline.process(records, reporting: report) })
        bridge.attach(self)
    }

    public func run() async throws {
        defer { membership.withLock { $0.stopped() } }
        try await consumer.subscribe(configuration.topics)
        logger.info("consuming", metadata: ["kafka.topics": "\(configuration.topics)", "kafka.group": "\(configuration.pipeline.group)"])
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await self.commitPeriodically() }
            let parking = self.configuration.pipeline.parking
            if parking.mode == .park || parking.topics.values.contains(.park) {
                group.addTask { try await self.countParkedKeysPeriodically() }
            }
            if let retention = self.configuration.retention {
                let pruner = ProcessedEventPruner(store: self.store, retention: retention, logger: self.logger)
                group.addTask { try await pruner.run() }
            }
            // Graceful shutdown cancels only the fetching: the batch sequence ends when cancelled.
            try await cancelWhenGracefulShutdown {
                for try await batch in self.consumer.batches {
                    self.dispatcher.dispatch(batch)
                }
            }
            group.cancelAll()
        }
        // Not a child of the (possibly cancelled) run task: draining must be able to wait.
        await Task { await self.shutDown() }.value
    }

    /// Drains the lanes, commits, and leaves the group.
    private func shutDown() async {
        membership.withLock { $0.stopping() }
        await dispatcher.drainAll(deadline: .now + configuration.shutdownTimeout)
        await commitNow(.shutdown)
        do {
            try await consumer.close()
        } catch {
            logger.error("leaving the group failed", metadata: ["error": "\(error)"])
        }
        logger.info("stopped")
    }

    private func commitPeriodically() async throws {
        while !Task.isCancelled {
            try await Task.sleep(for: configuration.commitInterval)
            await commitNow(.interval)
            recordLag()
        }
    }

    /// Keeps `sluice.parked.keys` true while keys are parked and released by other processes.
    private func countParkedKeysPeriodically() async throws {
        while !Task.isCancelled {
            do {
                try await pipeline.recountParkedKeys(topics: configuration.topics)
            } catch {
                logger.debug("counting the parked keys failed; the gauge keeps its last value", metadata: ["error": "\(error)"])
            }
            try await Task.sleep(for: configuration.parkedKeysInterval)
        }
    }

    /// Commits every watermark that moved, unless a revocation is committing right now.
    private enum CommitReason: String {
        /// The periodic commit: only partitions this member still owns.
        case interval
        /// The last commit before leaving: every watermark, lanes are already gone.
        case shutdown
    }

    private func commitNow(_ reason: CommitReason) async {
        let go = committing.withLock { state in
            guard state.revoking == 0, !state.inFlight else { return false }
            state.inFlight = true
            return true
        }
        guard go else { return }
        defer { committing.withLock { $0.inFlight = false } }
        let owned = dispatcher.assignedPartitions
        let offsets = watermarks.uncommitted().filter { reason == .shutdown || owned.contains($0.key) }
        guard !offsets.isEmpty else { return }
        do {
            try await consumer.commit(offsets)
            watermarks.markCommitted(offsets)
        } catch {
            // Not lost: the watermarks stay uncommitted and the next tick commits them.
            failedCommits.increment()
            logger.warning("commit failed; will retry", metadata: ["error": "\(error)", "commit.reason": "\(reason.rawValue)"])
        }
    }

    /// `sluice.partition.lag`: records between the partition's high watermark (as last fetched)
    /// and the next record without an outcome.
    private func recordLag() {
        for partition in dispatcher.assignedPartitions {
            guard let high = consumer.cachedWatermarks(for: partition)?.high, let position = watermarks.position(of: partition) else {
                continue
            }
            let gauge = lagGauges.withLock { gauges in
                if let gauge = gauges[partition] { return gauge }
                let gauge = Gauge(
                    label: "sluice.partition.lag",
                    dimensions: [("topic", partition.topic), ("partition", String(partition.partition))], factory: metricsFactory)
                gauges[partition] = gauge
                return gauge
            }
            gauge.record(max(0, high.rawValue - position.rawValue))
        }
    }

    fileprivate func partitionsAssigned(_ partitions: [TopicPartition]) async -> [TopicPartition: Offset] {
        var overrides: [TopicPartition: Offset] = [:]
        do {
            let stored = try await store.storedOffsets(group: configuration.pipeline.group, partitions: partitions)
            if !stored.isEmpty {
                let committed = try await consumer.committedOffsets(for: partitions)
                for (partition, offset) in stored where offset > (committed[partition] ?? .invalid) {
                    // The store committed past Kafka's commit (a crash between the two): resume
                    // from the store, so nothing is handled twice and nothing is skipped.
                    overrides[partition] = offset
                }
            }
        } catch {
            logger.error("reading stored offsets failed; resuming from Kafka's commits", metadata: ["error": "\(error)"])
        }
        if !overrides.isEmpty { logger.info("resuming from the store's offsets", metadata: ["offsets": "\(overrides)"]) }
        dispatcher.assign(partitions)
        // Every record before a stored offset has a durable outcome (its store transaction
        // committed): Kafka's commit catches up at the next tick, even if no record follows.
        for (partition, offset) in overrides { watermarks.advance(partition, to: offset) }
        membership.withLock { $0.assigned() }
        return overrides
    }

    fileprivate func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) async {
        committing.withLock { $0.revoking += 1 }
        defer { committing.withLock { $0.revoking -= 1 } }
        while committing.withLock({ $0.inFlight }) { try? await Task.sleep(for: .milliseconds(2)) }
        let positions = await dispatcher.revoke(partitions, deadline: .now + configuration.revocationTimeout)
        let uncommitted = watermarks.uncommitted()
        let offsets = positions.filter { uncommitted[$0.key] != nil }
        if !lost && !offsets.isEmpty {
            do {
                try await consumer.commit(offsets)
            } catch {
                failedCommits.increment()
                logger.warning("commit on revocation failed; the next owner resumes from the previous commit", metadata: ["error": "\(error)"])
            }
        }
        watermarks.forget(partitions)
        let holdsNone = dispatcher.assignedPartitions.isEmpty
        let running = membership.withLock { membership in
            membership.revoked(lost: lost, holdsNone: holdsNone)
            return membership.phase == .member || membership.phase == .joining
        }
        // A partition this member gave up to another has no lag here any more: its series ends.
        // The last revocation, when leaving the group at shutdown, keeps them: nothing took the
        // partitions over yet, and the process's last scrape shows where it stopped.
        if running {
            let gauges = lagGauges.withLock { gauges in partitions.compactMap { gauges.removeValue(forKey: $0) } }
            for gauge in gauges { gauge.destroy() }
        }
    }

    // MARK: Status

    /// Where the consumer stands in its group; changed only by rebalances and shutdown.
    private struct GroupMembership {
        private(set) var phase = ConsumerStatus.Phase.joining

        /// An assignment arrived (possibly empty): the consumer is a member holding it.
        mutating func assigned() {
            if phase == .joining { phase = .member }
        }

        /// A revocation: a lost assignment (the group moved on without this member), or one
        /// that leaves nothing (an eager rebalance), waits for the next assignment.
        mutating func revoked(lost: Bool, holdsNone: Bool) {
            if phase == .member && (lost || holdsNone) { phase = .joining }
        }

        mutating func stopping() {
            if phase != .stopped { phase = .stopping }
        }

        mutating func stopped() {
            phase = .stopped
        }
    }

    /// What the consumer is doing right now: its place in the group, each assigned partition's
    /// commit, position, lag, lane and halt, and whether the store answers a read.
    ///
    /// Everything but the store check is read from state the consumer keeps anyway (no request
    /// to the broker); the store check reads the stored offsets of the assigned partitions (of
    /// the first topic's partition 0 when none is assigned), which a store that is down cannot.
    ///
    /// - Parameters:
    ///   - storeTimeout: How long the store may take to answer before it counts as unavailable;
    ///     `nil` skips the check (``ConsumerStatus/storeProblem`` is `nil`). Default: 2 s.
    ///   - parkedKeysTimeout: When given, and parking is on for a partition's topic, the parked
    ///     keys of each such partition are counted in the store (``ConsumerStatus/Partition/parkedKeys``),
    ///     if it answers within this time. Default: `nil`, not counted.
    public func status(storeTimeout: Duration? = .seconds(2), parkedKeysTimeout: Duration? = nil) async -> ConsumerStatus {
        let phase = membership.withLock { $0.phase }
        let lanes = dispatcher.laneStatus
        let halts = pipeline.halts.current
        let parking = configuration.pipeline.parking
        var parked: [TopicPartition: Int]?
        if let parkedKeysTimeout, lanes.keys.contains(where: { parking.mode(for: $0.topic) != .off }) {
            parked = await store.parkedKeyCounts(group: configuration.pipeline.group, timeout: parkedKeysTimeout)
        }
        let partitions = lanes.keys.sorted().map { partition -> ConsumerStatus.Partition in
            let lane = lanes[partition]
            let committed = watermarks.committed(partition)
            let position = watermarks.position(of: partition)
            let high = consumer.cachedWatermarks(for: partition)?.high
            let from = position ?? committed
            let inFlight = lane?.inFlight.flatMap { range -> Offset? in
                guard let position else { return range.lowerBound }
                return range.contains(position) ? position : nil
            }
            return ConsumerStatus.Partition(
                partition: partition, committedOffset: committed, position: position, highWatermark: high,
                lag: high.flatMap { high in from.map { max(0, high.rawValue - $0.rawValue) } },
                queuedRecords: lane?.queued ?? 0, inFlightOffset: inFlight, isPaused: lane?.isPaused ?? false,
                halt: halts[partition],
                parkedKeys: parking.mode(for: partition.topic) == .off ? nil : parked.map { $0[partition] ?? 0 })
        }
        let probe = partitions.isEmpty
            ? configuration.topics.prefix(1).map { TopicPartition(topic: $0, partition: 0) }
            : partitions.map(\.partition)
        var storeProblem: String?
        if let storeTimeout {
            storeProblem = await store.availabilityProblem(group: configuration.pipeline.group, probe: probe, timeout: storeTimeout)
        }
        return ConsumerStatus(group: configuration.pipeline.group, phase: phase, partitions: partitions, storeProblem: storeProblem)
    }
}

/// Lets the Kafka consumer, created before the service finished initializing, call back into it.
private final class RebalanceBridge: KafkaRebalanceListener, Sendable {
    private let target = Mutex<(@Sendable ([TopicPartition]) async -> [TopicPartition: Offset], @Sendable ([TopicPartition], Bool) async -> Void)?>(nil)

    func attach<Store: DedupeStore>(_ consumer: EventConsumer<Store>) {
        target.withLock {
            $0 = ({ [weak consumer] in await consumer?.partitionsAssigned($0) ?? [:] },
                  { [weak consumer] in await consumer?.partitionsRevoked($0, lost: $1) })
        }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) async -> [TopicPartition: Offset] {
        await target.withLock { $0 }?.0(partitions) ?? [:]
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) async {
        await target.withLock { $0 }?.1(partitions, lost)
    }
}
