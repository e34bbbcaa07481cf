import Foundation

/// The transactional store handlers run in: it records, in the handler's own transaction, that an
/// event was processed and where its partition now stands.
///
/// Either the handler's writes, the processed-event record and the partition's next offset all
/// commit, or none of them does. That is what turns Kafka's at-least-once delivery into
/// exactly-once effects: a redelivered event finds its record and is skipped.
///
/// Implementations: ``InMemoryDedupeStore`` (tests), `SQLiteDedupeStore` (one process),
/// `PostgresDedupeStore` (a fleet).
///
/// - Important: Transactions are closure-scoped: ``withTransaction(_:)`` commits when the closure
///   returns and rolls back when it throws. A handler never begins or commits one itself.
public protocol DedupeStore: Sendable {
    /// What a transaction body, and so a handler, writes through.
    associatedtype Transaction: DedupeTransaction

    /// Runs `body` in one transaction: committed when it returns, rolled back when it throws.
    ///
    /// - Throws: The body's error (after rolling back), or a `SluiceError` naming the step that
    ///   failed (`begin`, `commit`) with `SluiceError/Code/storeUnavailable` or
    ///   `SluiceError/Code/storeConflict` (both retriable).
    func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T

    /// The next offsets stored for these partitions of `group`; partitions without one are absent.
    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset]

    /// Deletes processed-event records older than `cutoff`; returns how many.
    func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int

    /// How many transactions the store runs at once to good effect: the pipeline's store-wide
    /// group commit runs up to this many shared transactions side by side. 1 for a store with a
    /// single writer (SQLite); the pool's size for PostgreSQL. Default: 1.
    var maxConcurrentTransactions: Int { get }
}

extension DedupeStore {
    /// One transaction at a time, the safe choice for a store that does not say.
    public var maxConcurrentTransactions: Int { 1 }
}

/// One open transaction of a ``DedupeStore``.
public protocol DedupeTransaction: SendableMetatype {
    /// The record of `eventID` having been processed by `handler` in `group`, if there is one.
    func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent?

    /// Records that `handler` processed `eventID`. When the record exists (a `reprocess` replay),
    /// it is updated: count incremented, time and hash replaced.
    ///
    /// - Returns: The record's process count after this call: 1 when it is new. A caller that
    ///   found no record before and gets more than 1 back raced a concurrent transaction that
    ///   recorded the same event (two consumers during a rebalance) and must roll back.
    ///   Implementations insert with a unique key (`ON CONFLICT`), never read-then-write.
    @discardableResult
    func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws -> Int

    /// Stores the offset `group` resumes `partition` from.
    func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws

    /// Runs `body` so that what it wrote is undone when it throws, while the transaction goes on.
    func withSavepoint<T>(_ body: () async throws -> T) async throws -> T
}

/// That an event was processed by a handler.
public struct ProcessedEvent: Sendable, Hashable {
    /// The consumer group.
    public var group: String
    /// The handler's registered name.
    public var handler: String
    /// The envelope's `event_id`.
    public var eventID: String
    /// ``PayloadHash`` of the record's value when it was processed.
    public var payloadHash: String
    /// When it was last processed.
    public var processedAt: Date
    /// How often it was processed (more than 1 only through `reprocess` replays).
    public var processCount: Int

    /// A processed-event record as a store holds it.
    public init(group: String, handler: String, eventID: String, payloadHash: String, processedAt: Date, processCount: Int) {
        self.group = group
        self.handler = handler
        self.eventID = eventID
        self.payloadHash = payloadHash
        self.processedAt = processedAt
        self.processCount = processCount
    }
}

extension SluiceError.Code {
    /// The store could not be reached or refused the transaction; retriable.
    public static let storeUnavailable: Self = "STORE_UNAVAILABLE"
    /// Another transaction wrote the same row first; retriable.
    public static let storeConflict: Self = "STORE_CONFLICT"
}
