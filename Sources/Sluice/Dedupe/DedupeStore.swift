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

    /// The records of every event in `keys` processed by its handler in `group`: one lookup for a
    /// whole group of records (one round trip on PostgreSQL instead of one per record). Keys
    /// without a record are absent from the result.
    ///
    /// The default looks each key up with ``processedEvent(group:handler:eventID:)``.
    func processedEvents(group: String, keys: [ProcessedEventKey]) async throws -> [ProcessedEventKey: ProcessedEvent]

    /// Records several processed events at once, as ``markProcessed(group:handler:eventID:payloadHash:at:)``
    /// does each: inserted with `mark.count` as the process count, or, when the record exists,
    /// the count raised by `mark.count` and time and hash replaced. The keys are distinct.
    ///
    /// - Returns: Each record's process count after this call, in the order of `marks`. A mark
    ///   whose event had no record before and whose count is more than `mark.count` raced a
    ///   concurrent transaction: the caller must roll back.
    ///
    /// The default calls ``markProcessed(group:handler:eventID:payloadHash:at:)`` `mark.count` times per mark.
    func markProcessed(group: String, marks: [ProcessedEventMark], at time: Date) async throws -> [Int]

    /// Stores the offset `group` resumes `partition` from.
    func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws

    /// Runs `body` so that what it wrote is undone when it throws, while the transaction goes on.
    func withSavepoint<T>(_ body: () async throws -> T) async throws -> T

    // MARK: Parking (see ``Parking``). Stores that do not park throw `PARKING_UNSUPPORTED`.

    /// Which of `keys` are parked for `group` on `topic`. A database store locks the parked ones
    /// until the transaction ends (PostgreSQL `FOR SHARE`), so a release cannot empty a sequence
    /// this transaction is appending to.
    func parkedKeys(group: String, topic: String, among keys: [ParkingKey]) async throws -> Set<ParkingKey>

    /// Parks `key` for `group` on `record`'s topic, with `record` at the head of its sequence,
    /// failed with `failure`. When the key is parked already, `record` is appended to its
    /// sequence instead (the failure stays the first one). A record already in the sequence
    /// (same partition and offset) is not added twice.
    func park(_ record: Record, key: ParkingKey, group: String, failure: ParkingFailure) async throws

    /// Appends `record` to the sequence of `key`, which this transaction found parked with
    /// ``parkedKeys(group:topic:among:)``. A record already in the sequence is not added twice.
    func appendParked(_ record: Record, key: ParkingKey, group: String, at time: Date) async throws

    /// The parked keys of `group` (of one topic, or of all), oldest first within a topic.
    func parkedKeys(group: String, topic: String?) async throws -> [ParkedKey]

    /// The sequence of `key`, head first: by partition, then offset; at most `limit` records.
    func parkedRecords(group: String, topic: String, key: ParkingKey, limit: Int?) async throws -> [ParkedRecord]

    /// Removes one record (by partition and offset) from the sequence of `key`; when none
    /// remains the key is no longer parked. Locks the key first (PostgreSQL `FOR UPDATE`), so
    /// a transaction appending to it either commits first and is counted, or finds the key
    /// released. Returns how many records remain.
    func removeParked(group: String, topic: String, key: ParkingKey, partition: Int32, offset: Offset) async throws -> Int

    /// Claims `key` for a release by `claimant` at `time`: granted when no other claim holds it
    /// or the other claim is older than `staleBefore` (its release died); a claim of the same
    /// claimant is renewed.
    func claimParkedKey(
        group: String, topic: String, key: ParkingKey, claimant: String, at time: Date, staleBefore: Date
    ) async throws -> ParkingClaim

    /// Ends `claimant`'s release of `key` with `failure`: the key stays parked from the record
    /// that failed, and the failure replaces the one listed. With `failure` `nil`, only the
    /// claim is given up.
    func releaseFailed(group: String, topic: String, key: ParkingKey, claimant: String, failure: ParkingFailure?) async throws

    /// Drops the sequence of `key`, and records that `actor` discarded it at `time` and how
    /// many records it held (`sluice_parked_discards`). Returns that count (0: not parked).
    func discardParked(group: String, topic: String, key: ParkingKey, by actor: String, at time: Date) async throws -> Int
}

extension DedupeTransaction {
    public func processedEvents(group: String, keys: [ProcessedEventKey]) async throws -> [ProcessedEventKey: ProcessedEvent] {
        var found: [ProcessedEventKey: ProcessedEvent] = [:]
        for key in keys {
            if let event = try await processedEvent(group: group, handler: key.handler, eventID: key.eventID) { found[key] = event }
        }
        return found
    }

    public func markProcessed(group: String, marks: [ProcessedEventMark], at time: Date) async throws -> [Int] {
        var counts: [Int] = []
        counts.reserveCapacity(marks.count)
        for mark in marks {
            var count = 0
            for _ in 0..<max(1, mark.count) {
                count = try await markProcessed(
                    group: group, handler: mark.key.handler, eventID: mark.key.eventID, payloadHash: mark.payloadHash, at: time)
            }
            counts.append(count)
        }
        return counts
    }
}

/// Which processed-event record: a handler and an event, within a consumer group.
public struct ProcessedEventKey: Sendable, Hashable {
    /// The handler's registered name.
    public var handler: String
    /// The envelope's `event_id`.
    public var eventID: String

    /// The record of `eventID` processed by `handler`.
    public init(handler: String, eventID: String) {
        self.handler = handler
        self.eventID = eventID
    }
}

/// One record to write with ``DedupeTransaction/markProcessed(group:marks:at:)``.
public struct ProcessedEventMark: Sendable, Hashable {
    /// Which record.
    public var key: ProcessedEventKey
    /// ``PayloadHash`` of the record's value.
    public var payloadHash: String
    /// How many times the handler processed the event in this transaction (more than 1 only when
    /// a `reprocess` replay met the event twice).
    public var count: Int

    /// A mark of `key` processed `count` times, with `payloadHash`.
    public init(key: ProcessedEventKey, payloadHash: String, count: Int = 1) {
        self.key = key
        self.payloadHash = payloadHash
        self.count = count
    }
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
