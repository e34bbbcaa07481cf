import Dispatch
import Foundation
import Logging
import Sluice
import Synchronization

/// A Kafka consumer: a group member with manual commits, or a group-less reader of assigned
/// partitions.
///
/// Records arrive in batches through ``batches``, in offset order per partition. All blocking
/// librdkafka calls run on the consumer's own poll thread or on its serial control queue, never on
/// Swift's cooperative pool. Memory is bounded: when ``KafkaConsumerConfiguration/maxBufferedRecords``
/// records wait to be taken, the consumer pauses fetching until half of them were taken.
///
/// Nothing is committed unless ``commit(_:)`` or ``commitAsync(_:completion:)`` is called: the
/// layer above decides which offsets have a durable outcome.
///
/// ```swift
/// let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: ["localhost:9092"], groupID: "billing"), logger: logger)
/// try await consumer.subscribe(["billing.events"])
/// for try await batch in consumer.batches {
///     for record in batch { try await handle(record) }
///     try await consumer.commit(nextOffsets(after: batch))
/// }
/// ```
public final class KafkaConsumer: Sendable {
    /// The configuration the consumer was created with.
    public let configuration: KafkaConsumerConfiguration
    private let engine: KafkaConsumerEngine

    /// Creates the consumer and starts its poll thread. It reads nothing until ``subscribe(_:)``
    /// or ``assign(_:)``.
    ///
    /// - Parameters:
    ///   - configuration: Brokers, group, buffering and raw librdkafka properties.
    ///   - rebalanceListener: Told about assignments and revocations before they take effect.
    ///   - logger: Where the consumer and librdkafka's own log lines go.
    /// - Throws: ``KafkaError`` for an unknown or invalid property (named in the error) or a
    ///   librdkafka that is too old.
    public init(
        configuration: KafkaConsumerConfiguration,
        rebalanceListener: (any KafkaRebalanceListener)? = nil,
        logger: Logger
    ) throws(KafkaError) {
        self.configuration = configuration
        self.engine = try KafkaConsumerEngine(
            configuration: configuration, listener: rebalanceListener, logger: logger)
        engine.start()
    }

    deinit {
        engine.requestClose(completion: nil)
    }

    /// The record batches, in offset order per partition. Iterate it from one task only.
    ///
    /// The sequence ends after ``close()``; it throws when the consumer hit a fatal error.
    public var batches: KafkaRecordBatches { KafkaRecordBatches(engine: engine) }

    /// Joins the group and subscribes to `topics` (group consumers only).
    public func subscribe(_ topics: [String]) async throws(KafkaError) {
        guard configuration.groupID != nil else {
            throw KafkaError.invalidArgument("subscribe needs a group; this consumer has no groupID")
        }
        try await engine.perform(.subscribe(topics))
    }

    /// Reads exactly these partitions from these offsets, without a group (replacing any
    /// earlier assignment). Use `Offset/beginning`, `Offset/end` or `Offset/stored` for
    /// logical positions.
    public func assign(_ offsets: [TopicPartition: Offset]) async throws(KafkaError) {
        try await engine.perform(.assign(offsets))
    }

    /// Stops delivering records of `partitions` until ``resume(_:)``. Records of those partitions
    /// already fetched but not yet taken are held back, not lost.
    public func pause(_ partitions: [TopicPartition]) async throws(KafkaError) {
        try await engine.perform(.pause(partitions))
    }

    /// Continues `partitions` exactly where they stopped.
    public func resume(_ partitions: [TopicPartition]) async throws(KafkaError) {
        try await engine.perform(.resume(partitions))
    }

    /// The next offset the application will be given, for those of `partitions` whose fetched
    /// records have all been taken from ``batches`` (nothing buffered or held for them).
    ///
    /// Read on the poll thread between polls, so a returned position `P` means every record of
    /// that partition below `P` has already been returned by ``batches``. Unlike offsets of
    /// records seen, a position also moves past offsets that hold no record for the application:
    /// transaction markers and aborted records under `read_committed` (librdkafka moves the
    /// position past a control record as it is consumed).
    func drainedPositions(_ partitions: [TopicPartition]) async throws(KafkaError) -> [TopicPartition: Offset] {
        let positions = Mutex<[TopicPartition: Offset]>([:])
        try await engine.perform(.drainedPositions(partitions) { result in positions.withLock { $0 = result } })
        return positions.withLock { $0 }
    }

    /// Moves assigned partitions to new positions. Records of those partitions fetched but not
    /// yet taken are dropped; delivery continues at the new offsets.
    public func seek(_ offsets: [TopicPartition: Offset]) async throws(KafkaError) {
        try await engine.perform(.seek(offsets))
    }

    /// The partitions currently assigned to this consumer.
    public func assignment() async throws(KafkaError) -> [TopicPartition] {
        try await engine.onControlQueue { client throws(KafkaError) in try client.assignment() }
    }

    /// Commits explicit offsets (each the offset of the next record to read) and waits for the
    /// broker's answer.
    ///
    /// - Throws: ``KafkaError`` with ``KafkaError/partitionErrors`` when some partitions failed.
    public func commit(_ offsets: [TopicPartition: Offset]) async throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        try engine.requireGroup()
        try await engine.onControlQueue { client throws(KafkaError) in try client.commitSync(offsets) }
    }

    /// Starts a commit and returns at once; `completion` gets the broker's answer.
    ///
    /// Commits are sent in the order they are made.
    public func commitAsync(
        _ offsets: [TopicPartition: Offset],
        completion: @escaping @Sendable (Result<[TopicPartition: Offset], KafkaError>) -> Void
    ) {
        do {
            try engine.requireGroup()
        } catch {
            completion(.failure(error))
            return
        }
        engine.client.commitAsync(offsets, completion: completion)
    }

    /// The group's committed offsets; `Offset/invalid` for a partition with no commit.
    public func committedOffsets(
        for partitions: [TopicPartition], timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Offset] {
        try engine.requireGroup()
        return try await engine.onControlQueue { client throws(KafkaError) in
            try client.committed(partitions, timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
        }
    }

    /// The oldest offset still in the partition and the offset the next record will get.
    public func watermarks(
        for partition: TopicPartition, timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> (low: Offset, high: Offset) {
        try await engine.onControlQueue { client throws(KafkaError) in
            try client.watermarks(partition, timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
        }
    }

    /// The partition's watermarks as the last fetch response reported them, without a request to
    /// the broker (cheap enough for a lag gauge); `nil` before the partition was first fetched.
    public func cachedWatermarks(for partition: TopicPartition) -> (low: Offset, high: Offset)? {
        engine.client.cachedWatermarks(partition)
    }

    /// For each partition, the earliest offset whose timestamp is at or after the given time
    /// (milliseconds since the epoch); `Offset/end` when no record is that recent.
    ///
    /// The broker's time index answers. Where it says "none" although the partition's last record
    /// is that recent (brokers without a time index, such as ``EmbeddedKafkaCluster``), the
    /// partition is read to find the answer.
    public func offsets(
        forTimestamps timestamps: [TopicPartition: Int64], timeout: Duration = .seconds(10)
    ) async throws(KafkaError) -> [TopicPartition: Offset] {
        let scanner = RDKafkaTimestampScanner(
            properties: configuration.librdkafkaProperties, logger: engine.logger,
            timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
        return try await engine.onControlQueue { client throws(KafkaError) in
            let milliseconds = Int32(clamping: timeout.milliseconds)
            var offsets = try client.offsets(forTimestamps: timestamps, timeoutMilliseconds: milliseconds)
            for (partition, offset) in offsets where offset == .end {
                guard let target = timestamps[partition] else { continue }
                // "No record that recent" is checked against the partition's last record; a broker
                // without a time index (the embedded cluster) is caught here and the log scanned.
                let (low, high) = try client.watermarks(partition, timeoutMilliseconds: milliseconds)
                guard high > low, try scanner.firstOffset(in: partition, from: Offset(high.rawValue - 1), high: high, atOrAfter: target) != nil else {
                    continue
                }
                offsets[partition] = try scanner.firstOffset(in: partition, from: low, high: high, atOrAfter: target) ?? .end
            }
            return offsets
        }
    }

    /// Leaves the group cleanly: the rebalance listener hears about the final revocation (and
    /// can commit), the poll thread stops, and ``batches`` ends.
    public func close() async throws(KafkaError) {
        let result: Result<Void, KafkaError> = await withCheckedContinuation { continuation in
            engine.requestClose { continuation.resume(returning: $0) }
        }
        try result.get()
    }
}

/// The record batches of a ``KafkaConsumer``.
public struct KafkaRecordBatches: AsyncSequence, Sendable {
    public typealias Element = [Record]
    let engine: KafkaConsumerEngine

    public struct AsyncIterator: AsyncIteratorProtocol {
        let engine: KafkaConsumerEngine

        public mutating func next() async throws -> [Record]? {
            try await engine.nextBatch()
        }
    }

    public func makeAsyncIterator() -> AsyncIterator { AsyncIterator(engine: engine) }
}
