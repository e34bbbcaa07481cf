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
        var parking = ParkingTables()
        /// Raised by every commit that changed ``parking``: a transaction that read it at
        /// another version conflicts, as a row lock would make it wait and see the change.
        var parkingVersion = 0
    }

    /// The parked keys and their sequences, as the SQL stores' tables hold them.
    struct ParkingTables: Sendable {
        struct KeyID: Hashable, Sendable {
            var group: String
            var topic: String
            var key: ParkingKey
        }

        struct Entry: Sendable {
            var partition: Int32
            var parkedAt: Date
            var failure: ParkingFailure
            var claim: (claimant: String, at: Date)?
            /// By partition and offset.
            var records: [RecordID: ParkedRecord] = [:]
        }

        struct RecordID: Hashable, Comparable, Sendable {
            var partition: Int32
            var offset: Offset
            static func < (lhs: RecordID, rhs: RecordID) -> Bool { (lhs.partition, lhs.offset) < (rhs.partition, rhs.offset) }
        }

        var keys: [KeyID: Entry] = [:]
        var discards: [(key: KeyID, records: Int, by: String, at: Date)] = []
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
            /// The parking tables as this transaction sees them, once it read or wrote them,
            /// and the version they were read at.
            var parking: (tables: ParkingTables, version: Int, written: Bool)?
        }

        /// How to take back one write, newest last: a savepoint rolls back by undoing the writes
        /// made since it began. (Copying the writes at every savepoint made a transaction of n
        /// records cost n² copies; a store-wide group holds a thousand.)
        private enum Undo {
            case processed(ProcessedKey, previous: ProcessedEvent?, inserted: Bool)
            case offset(OffsetKey, previous: Offset?)
            case value(String, previous: JSONValue??)
            case parking(previous: ParkingTables)
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
                case .parking(let previous):
                    writes.parking?.tables = previous
                }
            }
        }

        // MARK: Parking

        /// The parking tables as this transaction sees them (read once, then its own copy).
        private func parkingTables() -> ParkingTables {
            if let parking = writes.parking { return parking.tables }
            let (tables, version) = store.tables.withLock { ($0.parking, $0.parkingVersion) }
            writes.parking = (tables, version, false)
            return tables
        }

        private func changeParking<T>(_ change: (inout ParkingTables) throws -> T) rethrows -> T {
            var tables = parkingTables()
            if savepointDepth > 0 { undo.append(.parking(previous: tables)) }
            let result = try change(&tables)
            writes.parking?.tables = tables
            writes.parking?.written = true
            return result
        }

        public func parkedKeys(group: String, topic: String, among keys: [ParkingKey]) async throws -> Set<ParkingKey> {
            let tables = parkingTables()
            return Set(keys.filter { tables.keys[ParkingTables.KeyID(group: group, topic: topic, key: $0)] != nil })
        }

        public func park(_ record: Record, key: ParkingKey, group: String, failure: ParkingFailure) async throws {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: record.topic, key: key)
                if tables.keys[id] == nil {
                    tables.keys[id] = ParkingTables.Entry(partition: record.partition, parkedAt: failure.failedAt, failure: failure)
                }
                let recordID = ParkingTables.RecordID(partition: record.partition, offset: record.offset)
                if tables.keys[id]?.records[recordID] == nil {
                    tables.keys[id]?.records[recordID] = ParkedRecord(record: record, parkedAt: failure.failedAt)
                }
            }
        }

        public func appendParked(_ record: Record, key: ParkingKey, group: String, at time: Date) async throws {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: record.topic, key: key)
                let recordID = ParkingTables.RecordID(partition: record.partition, offset: record.offset)
                if tables.keys[id] != nil, tables.keys[id]?.records[recordID] == nil {
                    tables.keys[id]?.records[recordID] = ParkedRecord(record: record, parkedAt: time)
                }
            }
        }

        public func parkedKeys(group: String, topic: String?) async throws -> [ParkedKey] {
            parkingTables().keys.filter { $0.key.group == group && (topic == nil || $0.key.topic == topic) }
                .map { id, entry in
                    ParkedKey(
                        topic: id.topic, key: id.key, partition: entry.partition, records: entry.records.count,
                        oldestOffset: entry.records.keys.filter { $0.partition == entry.partition }.min()?.offset,
                        parkedAt: entry.parkedAt, failure: entry.failure, releaseClaim: entry.claim?.claimant)
                }
                .sorted { ($0.topic, $0.parkedAt, $0.key) < ($1.topic, $1.parkedAt, $1.key) }
        }

        public func parkedRecords(group: String, topic: String, key: ParkingKey, limit: Int?) async throws -> [ParkedRecord] {
            guard let entry = parkingTables().keys[ParkingTables.KeyID(group: group, topic: topic, key: key)] else { return [] }
            let records = entry.records.sorted { $0.key < $1.key }.map(\.value)
            return limit.map { Array(records.prefix($0)) } ?? records
        }

        public func removeParked(group: String, topic: String, key: ParkingKey, partition: Int32, offset: Offset) async throws -> Int {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: topic, key: key)
                tables.keys[id]?.records[ParkingTables.RecordID(partition: partition, offset: offset)] = nil
                let remaining = tables.keys[id]?.records.count ?? 0
                if remaining == 0 { tables.keys[id] = nil }
                return remaining
            }
        }

        public func claimParkedKey(
            group: String, topic: String, key: ParkingKey, claimant: String, at time: Date, staleBefore: Date
        ) async throws -> ParkingClaim {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: topic, key: key)
                guard let entry = tables.keys[id] else { return .notParked }
                if let claim = entry.claim, claim.claimant != claimant, claim.at >= staleBefore {
                    return .heldBy(claim.claimant, since: claim.at)
                }
                tables.keys[id]?.claim = (claimant, time)
                return .claimed
            }
        }

        public func releaseFailed(group: String, topic: String, key: ParkingKey, claimant: String, failure: ParkingFailure?) async throws {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: topic, key: key)
                guard tables.keys[id]?.claim?.claimant == claimant else { return }
                tables.keys[id]?.claim = nil
                if let failure { tables.keys[id]?.failure = failure }
            }
        }

        public func discardParked(group: String, topic: String, key: ParkingKey, by actor: String, at time: Date) async throws -> Int {
            changeParking { tables in
                let id = ParkingTables.KeyID(group: group, topic: topic, key: key)
                guard let entry = tables.keys.removeValue(forKey: id) else { return 0 }
                tables.discards.append((id, entry.records.count, actor, time))
                return entry.records.count
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
            if let parking = writes.parking, parking.written {
                // Parking read at one version and written over another's change: the conflict a
                // row lock would have resolved by waiting.
                guard parking.version == tables.parkingVersion else {
                    throw SluiceError(code: .storeConflict, message: "parked keys changed in a concurrent transaction", isRetriable: true)
                }
                tables.parking = parking.tables
                tables.parkingVersion += 1
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
