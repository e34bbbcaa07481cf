import Foundation
import Synchronization

/// A ``DedupeStore`` in memory, with real transaction semantics: writes are staged and become
/// visible only when the transaction commits, savepoints roll back their own writes, and two
/// transactions that record the same event conflict at commit.
///
/// For tests and for services that keep no state of their own. Handlers can keep state in it
/// through ``Transaction/value(forKey:)`` and ``Transaction/setValue(_:forKey:)``.
public final class InMemoryDedupeStore: DedupeStore {
    struct Tables: Sendable {
        var processed: [ProcessedKey: ProcessedEvent] = [:]
        var offsets: [OffsetKey: Offset] = [:]
        var values: [String: JSONValue] = [:]
    }

    struct ProcessedKey: Hashable, Sendable {
        var group: String
        var handler: String
        var eventID: String
    }

    struct OffsetKey: Hashable, Sendable {
        var group: String
        var partition: TopicPartition
    }

    private let tables = Mutex(Tables())
    private let failures = Mutex<[SluiceError]>([])

    public init() {}

    /// An open in-memory transaction. Not thread-safe: it belongs to one transaction body.
    public final class Transaction: DedupeTransaction {
        fileprivate var base: Tables
        fileprivate var staged: Tables
        fileprivate var newlyProcessed: Set<ProcessedKey> = []

        fileprivate init(base: Tables) {
            self.base = base
            self.staged = base
        }

        public func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent? {
            staged.processed[ProcessedKey(group: group, handler: handler, eventID: eventID)]
        }

        public func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws {
            let key = ProcessedKey(group: group, handler: handler, eventID: eventID)
            if var existing = staged.processed[key] {
                existing.processCount += 1
                existing.processedAt = time
                existing.payloadHash = payloadHash
                staged.processed[key] = existing
            } else {
                staged.processed[key] = ProcessedEvent(
                    group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, processedAt: time, processCount: 1)
                newlyProcessed.insert(key)
            }
        }

        public func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws {
            staged.offsets[OffsetKey(group: group, partition: partition)] = offset
        }

        public func withSavepoint<T>(_ body: () async throws -> T) async throws -> T {
            let saved = staged
            let savedNew = newlyProcessed
            do {
                return try await body()
            } catch {
                staged = saved
                newlyProcessed = savedNew
                throw error
            }
        }

        /// A handler's own value, as this transaction sees it.
        public func value(forKey key: String) -> JSONValue? { staged.values[key] }

        /// Writes a handler's own value; visible to others only after commit.
        public func setValue(_ value: JSONValue?, forKey key: String) { staged.values[key] = value }
    }

    /// Makes the next transactions fail at commit with these errors, in order (fault injection).
    public func failNextCommits(with errors: [SluiceError]) {
        failures.withLock { $0.append(contentsOf: errors) }
    }

    public func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        let transaction = Transaction(base: tables.withLock { $0 })
        let result = try await body(transaction)
        if let injected = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw injected }
        try tables.withLock { (tables: inout Tables) throws(SluiceError) in
            // Another transaction may have recorded the same event since this one began: that is
            // the unique-constraint violation a database would raise.
            for key in transaction.newlyProcessed where tables.processed[key] != nil {
                throw SluiceError(
                    code: .storeConflict, message: "event \(key.eventID) was recorded by a concurrent transaction",
                    isRetriable: true)
            }
            for (key, event) in transaction.staged.processed where transaction.base.processed[key] != event {
                tables.processed[key] = event
            }
            for (key, offset) in transaction.staged.offsets where transaction.base.offsets[key] != offset {
                tables.offsets[key] = offset
            }
            for (key, value) in transaction.staged.values where transaction.base.values[key] != value {
                tables.values[key] = value
            }
            for key in transaction.base.values.keys where transaction.staged.values[key] == nil {
                tables.values.removeValue(forKey: key)
            }
        }
        return result
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        tables.withLock { tables in
            var result: [TopicPartition: Offset] = [:]
            for partition in partitions {
                if let offset = tables.offsets[OffsetKey(group: group, partition: partition)] { result[partition] = offset }
            }
            return result
        }
    }

    public func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        tables.withLock { tables in
            let expired = tables.processed.filter { $0.value.processedAt < cutoff }.map(\.key)
            for key in expired { tables.processed.removeValue(forKey: key) }
            return expired.count
        }
    }

    /// Every processed-event record (for tests and tooling).
    public var processedEvents: [ProcessedEvent] { tables.withLock { Array($0.processed.values) } }

    /// A handler value as committed.
    public func committedValue(forKey key: String) -> JSONValue? { tables.withLock { $0.values[key] } }
}
