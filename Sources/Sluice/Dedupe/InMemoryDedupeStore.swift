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

    fileprivate let tables = Mutex(Tables())
    private let failures = Mutex<[SluiceError]>([])

    /// An empty store.
    public init() {}

    /// Transactions run side by side (they conflict only on the same event, at commit), so a
    /// slow handler of one lane does not hold the others back. 64.
    public var maxConcurrentTransactions: Int { 64 }

    /// An open in-memory transaction: its own writes, read over the committed tables.
    /// Not thread-safe: it belongs to one transaction body.
    public final class Transaction: DedupeTransaction {
        fileprivate struct Writes {
            var processed: [ProcessedKey: ProcessedEvent] = [:]
            var offsets: [OffsetKey: Offset] = [:]
            var values: [String: JSONValue?] = [:]
            var newlyProcessed: Set<ProcessedKey> = []
        }

        /// How to take back one write, newest last: a savepoint rolls back by undoing the writes
        /// made since it began. (Copying the writes at every savepoint made a transaction of n
        /// records cost n² copies; a store-wide group holds a thousand.)
        private enum Undo {
            case processed(ProcessedKey, previous: ProcessedEvent?, inserted: Bool)
            case offset(OffsetKey, previous: Offset?)
            case value(String, previous: JSONValue??)
        }

        private let store: InMemoryDedupeStore
        fileprivate var writes = Writes()
        private var undo: [Undo] = []
        private var savepointDepth = 0

        fileprivate init(store: InMemoryDedupeStore) {
            self.store = store
        }

        public func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent? {
            let key = ProcessedKey(group: group, handler: handler, eventID: eventID)
            if let written = writes.processed[key] { return written }
            return store.tables.withLock { $0.processed[key] }
        }

        @discardableResult
        public func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws -> Int {
            let key = ProcessedKey(group: group, handler: handler, eventID: eventID)
            if savepointDepth > 0 { undo.append(.processed(key, previous: writes.processed[key], inserted: !writes.newlyProcessed.contains(key))) }
            if var existing = try await processedEvent(group: group, handler: handler, eventID: eventID) {
                existing.processCount += 1
                existing.processedAt = time
                existing.payloadHash = payloadHash
                writes.processed[key] = existing
                return existing.processCount
            } else {
                writes.processed[key] = ProcessedEvent(
                    group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, processedAt: time, processCount: 1)
                writes.newlyProcessed.insert(key)
                return 1
            }
        }

        public func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws {
            // Never backwards, as the SQL stores: a member that lost the partition in a
            // rebalance and commits late must not rewind the new owner's position.
            let key = OffsetKey(group: group, partition: partition)
            let committed = store.tables.withLock { $0.offsets[key] }
            if savepointDepth > 0 { undo.append(.offset(key, previous: writes.offsets[key])) }
            writes.offsets[key] = max(offset, writes.offsets[key] ?? committed ?? offset)
        }

        public func withSavepoint<T>(_ body: () async throws -> T) async throws -> T {
            let mark = undo.count
            savepointDepth += 1
            defer { savepointDepth -= 1 }
            do {
                let result = try await body()
                if savepointDepth == 1 { undo.removeAll(keepingCapacity: true) }
                return result
            } catch {
                rollBack(to: mark)
                throw error
            }
        }

        private func rollBack(to mark: Int) {
            while undo.count > mark {
                switch undo.removeLast() {
                case .processed(let key, let previous, let inserted):
                    writes.processed[key] = previous
                    if inserted { writes.newlyProcessed.remove(key) }
                case .offset(let key, let previous):
                    writes.offsets[key] = previous
                case .value(let key, let previous):
                    writes.values[key] = previous
                }
            }
        }

        /// A handler's own value, as this transaction sees it.
        public func value(forKey key: String) -> JSONValue? {
            if let written = writes.values[key] { return written }
            return store.tables.withLock { $0.values[key] }
        }

        /// Writes a handler's own value (`nil` deletes it); visible to others only after commit.
        public func setValue(_ value: JSONValue?, forKey key: String) {
            if savepointDepth > 0 { undo.append(.value(key, previous: writes.values[key])) }
            writes.values[key] = .some(value)
        }
    }

    /// Makes the next transactions fail at commit with these errors, in order (fault injection).
    public func failNextCommits(with errors: [SluiceError]) {
        failures.withLock { $0.append(contentsOf: errors) }
    }

    public func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        let transaction = Transaction(store: self)
        let result = try await body(transaction)
        if let injected = failures.withLock({ $0.isEmpty ? nil : $0.removeFirst() }) { throw injected }
        let writes = transaction.writes
        try tables.withLock { (tables: inout Tables) throws(SluiceError) in
            // Another transaction may have recorded the same event since this one read it: that
            // is the unique-constraint violation a database would raise.
            for key in writes.newlyProcessed where tables.processed[key] != nil {
                throw SluiceError(
                    code: .storeConflict, message: "event \(key.eventID) was recorded by a concurrent transaction",
                    isRetriable: true)
            }
            tables.processed.merge(writes.processed) { _, new in new }
            tables.offsets.merge(writes.offsets) { old, new in max(old, new) }
            for (key, value) in writes.values { tables.values[key] = value }
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
