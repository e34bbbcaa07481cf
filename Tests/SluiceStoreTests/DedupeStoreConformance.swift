import Foundation
import Sluice
import Testing

/// The ``DedupeStore`` contract as checks any SQL store must pass: each takes a factory that
/// opens a store on one fresh database (every call opens another store on the same database) with
/// the given migrations, and records failures with `#expect`.
///
/// A store's suite calls each check against a fresh database per test.
enum DedupeStoreConformance {
    /// Opens a store on the test's database, applying `migrations` after the store's own.
    typealias Open<Store> = @Sendable (_ migrations: [StoreMigration]) async throws -> Store

    /// The tables the checks write through, as a service's migrations would create them.
    static let migrations: [StoreMigration] = [
        StoreMigration(
            id: "conformance-1-ledger",
            sql: "CREATE TABLE conformance_ledger (event_id TEXT NOT NULL, writer TEXT NOT NULL, cents BIGINT NOT NULL)"),
        StoreMigration(
            id: "conformance-2-values",
            sqlite: "CREATE TABLE conformance_values (id BIGINT PRIMARY KEY, i BIGINT, r DOUBLE PRECISION, t TEXT, b BLOB)",
            postgresql: "CREATE TABLE conformance_values (id BIGINT PRIMARY KEY, i BIGINT, r DOUBLE PRECISION, t TEXT, b BYTEA)"),
    ]

    static let group = "conformance-group"
    static let handler = "ledger"
    static let partition = TopicPartition(topic: "payments", partition: 0)

    struct HandlerFailure: Error, Equatable {}

    // MARK: - Transactions

    /// A committed transaction makes the handler's rows, the processed record and the offset
    /// visible together.
    static func commitMakesWritesVisibleTogether<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let time = Date(timeIntervalSince1970: 1_700_000_000)
        try await store.withTransaction { transaction in
            try await transaction.execute(
                "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES (?, ?, ?)", ["e-1", "commit", 250])
            try await transaction.markProcessed(group: group, handler: handler, eventID: "e-1", payloadHash: "hash-1", at: time)
            try await transaction.storeNextOffset(Offset(8), for: partition, group: group)
        }

        #expect(try await ledgerWriters(store, eventID: "e-1") == ["commit"])
        let record = try await processedEvent(store, eventID: "e-1")
        #expect(record?.payloadHash == "hash-1")
        #expect(record?.processCount == 1)
        #expect(try await store.storedOffsets(group: group, partitions: [partition]) == [partition: Offset(8)])
    }

    /// A body that throws leaves no trace of its handler rows, record or offset, and its error
    /// comes out unchanged; running it again starts from a clean state.
    static func throwingBodyLeavesNoTrace<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        await #expect(throws: HandlerFailure()) {
            try await store.withTransaction { transaction in
                try await transaction.execute(
                    "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES (?, ?, ?)", ["e-2", "first try", 1])
                try await transaction.markProcessed(group: group, handler: handler, eventID: "e-2", payloadHash: "h", at: Date())
                try await transaction.storeNextOffset(Offset(3), for: partition, group: group)
                throw HandlerFailure()
            }
        }

        #expect(try await ledgerWriters(store, eventID: "e-2") == [])
        #expect(try await processedEvent(store, eventID: "e-2") == nil)
        #expect(try await store.storedOffsets(group: group, partitions: [partition]) == [:])

        let sawRecord = try await store.withTransaction { transaction in
            let existing = try await transaction.processedEvent(group: group, handler: handler, eventID: "e-2")
            try await transaction.execute(
                "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES (?, ?, ?)", ["e-2", "retry", 1])
            let count = try await transaction.markProcessed(group: group, handler: handler, eventID: "e-2", payloadHash: "h", at: Date())
            try await transaction.storeNextOffset(Offset(3), for: partition, group: group)
            return existing != nil || count != 1
        }
        #expect(sawRecord == false)
        #expect(try await ledgerWriters(store, eventID: "e-2") == ["retry"])
        #expect(try await store.storedOffsets(group: group, partitions: [partition]) == [partition: Offset(3)])
    }

    /// Rolling back to a savepoint undoes only what was written inside it (nested savepoints
    /// included), and the transaction goes on to commit the rest.
    static func savepointRollbackUndoesOnlyItsOwnWrites<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let other = TopicPartition(topic: "payments", partition: 1)
        try await store.withTransaction { transaction in
            try await insertLedger(transaction, eventID: "batch", writer: "before")
            await #expect(throws: HandlerFailure()) {
                try await transaction.withSavepoint {
                    try await insertLedger(transaction, eventID: "batch", writer: "rolled back")
                    try await transaction.markProcessed(group: group, handler: handler, eventID: "sp-undone", payloadHash: "h", at: Date())
                    try await transaction.storeNextOffset(Offset(99), for: other, group: group)
                    throw HandlerFailure()
                }
            }
            try await transaction.withSavepoint {
                try await insertLedger(transaction, eventID: "batch", writer: "outer")
                await #expect(throws: HandlerFailure()) {
                    try await transaction.withSavepoint {
                        try await insertLedger(transaction, eventID: "batch", writer: "inner")
                        throw HandlerFailure()
                    }
                }
                try await transaction.markProcessed(group: group, handler: handler, eventID: "sp-kept", payloadHash: "h", at: Date())
            }
            try await insertLedger(transaction, eventID: "batch", writer: "after")
            try await transaction.storeNextOffset(Offset(5), for: partition, group: group)
        }

        #expect(try await ledgerWriters(store, eventID: "batch") == ["after", "before", "outer"])
        #expect(try await processedEvent(store, eventID: "sp-undone") == nil)
        #expect(try await processedEvent(store, eventID: "sp-kept")?.processCount == 1)
        #expect(try await store.storedOffsets(group: group, partitions: [partition, other]) == [partition: Offset(5)])
    }

    // MARK: - Processed events

    /// `markProcessed` returns 1 for a new record and 2 when it records the event again, replacing
    /// the time and the hash.
    static func markProcessedCountsReprocessing<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws {
        let store = try await open(migrations)
        let first = Date(timeIntervalSince1970: 1_700_000_000.25)
        let second = Date(timeIntervalSince1970: 1_700_000_600.5)
        let count1 = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: group, handler: handler, eventID: "e-3", payloadHash: "hash-a", at: first)
        }
        #expect(count1 == 1)
        let record1 = try await processedEvent(store, eventID: "e-3")
        #expect(record1?.payloadHash == "hash-a")
        #expect(record1.map { abs($0.processedAt.timeIntervalSince(first)) < 0.001 } == true)

        let count2 = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: group, handler: handler, eventID: "e-3", payloadHash: "hash-b", at: second)
        }
        #expect(count2 == 2)
        let record2 = try await processedEvent(store, eventID: "e-3")
        #expect(record2?.processCount == 2)
        #expect(record2?.payloadHash == "hash-b")
        #expect(record2.map { abs($0.processedAt.timeIntervalSince(second)) < 0.001 } == true)

        // The key is (group, handler, event): another handler's record of the same event is its own.
        let otherHandler = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: group, handler: "audit", eventID: "e-3", payloadHash: "hash-b", at: second)
        }
        #expect(otherHandler == 1)
    }

    /// The batch forms answer as the single ones do: `processedEvents` finds exactly the recorded
    /// keys of the group (other handlers' and other groups' records are not theirs), and
    /// `markProcessed(marks:)` inserts new records with their counts and raises existing ones,
    /// returning the counts in the order of the marks.
    static func batchLookupAndMarksMatchTheSingleForms<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws {
        let store = try await open(migrations)
        let first = Date(timeIntervalSince1970: 1_700_000_000.25)
        let later = Date(timeIntervalSince1970: 1_700_000_900.5)
        try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: group, handler: handler, eventID: "b-1", payloadHash: "h1", at: first)
            try await transaction.markProcessed(group: group, handler: "audit", eventID: "b-2", payloadHash: "h2", at: first)
            try await transaction.markProcessed(group: "other-group", handler: handler, eventID: "b-3", payloadHash: "h3", at: first)
        }
        let keys = [
            ProcessedEventKey(handler: handler, eventID: "b-1"), ProcessedEventKey(handler: handler, eventID: "b-2"),
            ProcessedEventKey(handler: "audit", eventID: "b-2"), ProcessedEventKey(handler: handler, eventID: "b-3"),
            ProcessedEventKey(handler: handler, eventID: "b-new"),
        ]
        let found = try await store.withTransaction { transaction in try await transaction.processedEvents(group: group, keys: keys) }
        #expect(Set(found.keys) == [keys[0], keys[2]])
        #expect(found[keys[0]]?.payloadHash == "h1")
        #expect(found[keys[0]]?.processCount == 1)
        #expect(found[keys[0]].map { abs($0.processedAt.timeIntervalSince(first)) < 0.001 } == true)
        #expect(found[keys[2]]?.payloadHash == "h2")
        #expect(try await store.withTransaction { transaction in try await transaction.processedEvents(group: group, keys: []) }.isEmpty)

        let counts = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: group, marks: [
                ProcessedEventMark(key: keys[4], payloadHash: "n1"),
                ProcessedEventMark(key: keys[0], payloadHash: "h1b"),
                ProcessedEventMark(key: ProcessedEventKey(handler: handler, eventID: "b-twice"), payloadHash: "t", count: 2),
            ], at: later)
        }
        #expect(counts == [1, 2, 2])
        let after = try await store.withTransaction { transaction in
            try await transaction.processedEvents(group: group, keys: [keys[0], keys[4], ProcessedEventKey(handler: handler, eventID: "b-twice")])
        }
        #expect(after[keys[0]]?.payloadHash == "h1b")
        #expect(after[keys[0]]?.processCount == 2)
        #expect(after[keys[0]].map { abs($0.processedAt.timeIntervalSince(later)) < 0.001 } == true)
        #expect(after[keys[4]]?.processCount == 1)
        #expect(after[ProcessedEventKey(handler: handler, eventID: "b-twice")]?.processCount == 2)
        // Nothing of another group moved.
        #expect(try await store.withTransaction { transaction in
            try await transaction.processedEvent(group: "other-group", handler: handler, eventID: "b-3")
        }?.processCount == 1)
        // A batch rolled back with its transaction leaves nothing.
        await #expect(throws: HandlerFailure()) {
            try await store.withTransaction { transaction in
                _ = try await transaction.markProcessed(group: group, marks: [
                    ProcessedEventMark(key: ProcessedEventKey(handler: handler, eventID: "b-undone"), payloadHash: "u"),
                ], at: later)
                throw HandlerFailure()
            }
        }
        #expect(try await processedEvent(store, eventID: "b-undone") == nil)
    }

    enum RecordOutcome: Sendable, Hashable {
        case committed
        case skipped
        case conflict
    }

    /// Two transactions recording the same new event at once (two consumers during a rebalance):
    /// exactly one commits its handler's write; the other is told of the conflict (or finds the
    /// record), never both.
    /// - Returns: The two transactions' outcomes.
    @discardableResult
    static func concurrentRecordingCommitsOnce<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws -> [RecordOutcome]
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let rendezvous = Rendezvous(parties: 2)
        async let first = recordOnce(store, eventID: "e-race", writer: "consumer-a", rendezvous: rendezvous)
        async let second = recordOnce(store, eventID: "e-race", writer: "consumer-b", rendezvous: rendezvous)
        let outcomes = try await [first, second]

        #expect(outcomes.filter { $0 == .committed }.count == 1, "outcomes: \(outcomes)")
        #expect(try await ledgerWriters(store, eventID: "e-race").count == 1)
        #expect(try await processedEvent(store, eventID: "e-race")?.processCount == 1)

        // The loser's retry finds the record and skips.
        #expect(try await recordOnce(store, eventID: "e-race", writer: "retry", rendezvous: nil) == .skipped)
        #expect(try await ledgerWriters(store, eventID: "e-race").count == 1)
        return outcomes
    }

    /// What the pipeline does for one record: skip a recorded event, else write, record, and roll
    /// back when the record turns out to exist already.
    static func recordOnce<Store: DedupeStore>(_ store: Store, eventID: String, writer: String, rendezvous: Rendezvous?) async throws
        -> RecordOutcome where Store.Transaction: SQLTransaction
    {
        do {
            return try await store.withTransaction { transaction in
                let existing = try await transaction.processedEvent(group: group, handler: handler, eventID: eventID)
                // Both read before either writes, when the store lets two transactions run at once.
                await rendezvous?.arriveAndWait(atMost: .seconds(2))
                if existing != nil { return .skipped }
                try await insertLedger(transaction, eventID: eventID, writer: writer)
                let count = try await transaction.markProcessed(group: group, handler: handler, eventID: eventID, payloadHash: "h", at: Date())
                if count != 1 {
                    throw SluiceError(code: .storeConflict, message: "recorded concurrently", isRetriable: true)
                }
                return .committed
            }
        } catch let error as SluiceError where error.code == .storeConflict {
            #expect(error.isRetriable)
            return .conflict
        }
    }

    // MARK: - Offsets

    /// Offsets are kept per (group, topic, partition) and never move backwards.
    static func offsetsArePerPartitionAndNeverMoveBackwards<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws {
        let store = try await open(migrations)
        let p0 = TopicPartition(topic: "payments", partition: 0)
        let p1 = TopicPartition(topic: "payments", partition: 1)
        let refunds0 = TopicPartition(topic: "refunds", partition: 0)
        let unknown = TopicPartition(topic: "payments", partition: 7)
        try await store.withTransaction { transaction in
            try await transaction.storeNextOffset(Offset(10), for: p0, group: group)
            try await transaction.storeNextOffset(Offset(5), for: p1, group: group)
            try await transaction.storeNextOffset(Offset(42), for: refunds0, group: group)
            try await transaction.storeNextOffset(Offset(7), for: p0, group: "other-group")
        }
        try await store.withTransaction { transaction in
            try await transaction.storeNextOffset(Offset(3), for: p0, group: group)
            try await transaction.storeNextOffset(Offset(6), for: p1, group: group)
        }

        #expect(
            try await store.storedOffsets(group: group, partitions: [p0, p1, refunds0, unknown])
                == [p0: Offset(10), p1: Offset(6), refunds0: Offset(42)])
        #expect(try await store.storedOffsets(group: "other-group", partitions: [p0, p1]) == [p0: Offset(7)])
        #expect(try await store.storedOffsets(group: "no-such-group", partitions: [p0]) == [:])
        #expect(try await store.storedOffsets(group: group, partitions: []) == [:])
    }

    // MARK: - Retention

    /// Pruning removes exactly the records processed before the cutoff.
    static func pruneRemovesExactlyOlderRecords<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws {
        let store = try await open(migrations)
        let cutoff = Date(timeIntervalSince1970: 1_750_000_000)
        let times: [String: TimeInterval] = ["hour-before": -3600, "second-before": -1, "at-cutoff": 0, "second-after": 1, "hour-after": 3600]
        try await store.withTransaction { transaction in
            for (eventID, offset) in times {
                try await transaction.markProcessed(
                    group: group, handler: handler, eventID: eventID, payloadHash: "h", at: cutoff.addingTimeInterval(offset))
            }
        }

        #expect(try await store.pruneProcessedEvents(olderThan: cutoff) == 2)
        var survivors: Set<String> = []
        for eventID in times.keys where try await processedEvent(store, eventID: eventID) != nil { survivors.insert(eventID) }
        #expect(survivors == ["at-cutoff", "second-after", "hour-after"])
        #expect(try await store.pruneProcessedEvents(olderThan: cutoff) == 0)
    }

    // MARK: - Migrations

    /// A service's migrations create tables handlers can use; each is applied once, so reopening
    /// the store runs none of them again.
    static func userMigrationsApplyOnce<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let seeded = migrations + [
            StoreMigration(id: "conformance-3-seed", sql: "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES ('seed', 'migration', 0)")
        ]
        let store = try await open(seeded)
        try await store.withTransaction { transaction in
            try await insertLedger(transaction, eventID: "seed", writer: "handler")
        }
        // Creating the table again would fail, and the seed row would be doubled.
        let reopened = try await open(seeded)
        #expect(try await ledgerWriters(reopened, eventID: "seed") == ["handler", "migration"])

        // A later migration is applied on the next open, once.
        let extended = seeded + [StoreMigration(id: "conformance-4-index", sql: "CREATE INDEX conformance_ledger_event ON conformance_ledger (event_id)")]
        _ = try await open(extended)
        _ = try await open(extended)
    }

    /// Several stores opening the same fresh database at once all come up, each migration applied once.
    static func concurrentOpensAllSucceed<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let seeded = migrations + [
            StoreMigration(id: "conformance-3-seed", sql: "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES ('seed', 'migration', 0)")
        ]
        let stores = try await withThrowingTaskGroup(of: Store.self) { group in
            for _ in 0..<4 { group.addTask { try await open(seeded) } }
            var stores: [Store] = []
            for try await store in group { stores.append(store) }
            return stores
        }
        #expect(stores.count == 4)
        for store in stores {
            #expect(try await ledgerWriters(store, eventID: "seed") == ["migration"])
        }
    }

    // MARK: - SQL

    /// Every ``SQLValue`` kind goes in and comes out unchanged.
    static func sqlValuesRoundTrip<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let rows: [[SQLValue]] = [
            [1, .integer(Int64.max), 1.5, "plain", .blob([0, 1, 2, 254, 255])],
            [2, .integer(Int64.min), -0.000_125, "ünïcødé 🌍 日本語 'quoted' \"double\" ?", .blob(Array("bytes".utf8))],
            [3, 0, 1e300, "", .blob([0x80])],
            [4, nil, nil, nil, nil],
        ]
        try await store.withTransaction { transaction in
            for row in rows {
                let changed = try await transaction.execute("INSERT INTO conformance_values (id, i, r, t, b) VALUES (?, ?, ?, ?, ?)", row)
                #expect(changed == 1)
            }
        }
        let read = try await store.withTransaction { transaction in
            try await transaction.query("SELECT id, i, r, t, b FROM conformance_values ORDER BY id")
        }
        #expect(read.map(\.values) == rows)
        #expect(read.first?.columns == ["id", "i", "r", "t", "b"])
        #expect(read.first?["T"] == "plain")

        let matched = try await store.withTransaction { transaction in
            try await transaction.query("SELECT id FROM conformance_values WHERE i = ? AND t = ?", [.integer(Int64.max), "plain"])
        }
        #expect(matched.map { $0["id"] } == [1])
    }

    /// A `?` inside a string literal is text, not a placeholder.
    static func questionMarkInStringLiteralIsText<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let rows = try await store.withTransaction { transaction in
            try await transaction.execute(
                "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES ('why?', ?, ?) -- what? no ?", ["who?", 7])
            return try await transaction.query("SELECT event_id, writer, cents FROM conformance_ledger WHERE event_id = '?' OR writer = ?", ["who?"])
        }
        #expect(rows.map(\.values) == [["why?", "who?", 7]])
    }

    /// A statement the database rejects fails with `STORE_STATEMENT_FAILED`, not retriable, and
    /// the transaction rolls back.
    static func badStatementFailsNonRetriably<Store: DedupeStore>(_ open: @escaping Open<Store>) async throws
    where Store.Transaction: SQLTransaction {
        let store = try await open(migrations)
        let error = await #expect(throws: SluiceError.self) {
            try await store.withTransaction { transaction in
                try await insertLedger(transaction, eventID: "bad", writer: "before the bad statement")
                try await transaction.execute("INSERT INTO no_such_table (x) VALUES (?)", [1])
            }
        }
        #expect(error?.code.rawValue == "STORE_STATEMENT_FAILED")
        #expect(error?.isRetriable == false)
        #expect(try await ledgerWriters(store, eventID: "bad") == [])

        let syntax = await #expect(throws: SluiceError.self) {
            try await store.withTransaction { transaction in try await transaction.query("SELEC 1") }
        }
        #expect(syntax?.code.rawValue == "STORE_STATEMENT_FAILED")
        #expect(syntax?.isRetriable == false)
    }

    // MARK: - Helpers

    static func insertLedger<Transaction: SQLTransaction>(_ transaction: Transaction, eventID: String, writer: String) async throws {
        try await transaction.execute(
            "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES (?, ?, ?)", [.text(eventID), .text(writer), 1])
    }

    static func ledgerWriters<Store: DedupeStore>(_ store: Store, eventID: String) async throws -> [String]
    where Store.Transaction: SQLTransaction {
        try await store.withTransaction { transaction in
            try await transaction.query("SELECT writer FROM conformance_ledger WHERE event_id = ? ORDER BY writer", [.text(eventID)])
                .compactMap { $0["writer"]?.string }
        }
    }

    static func processedEvent<Store: DedupeStore>(_ store: Store, eventID: String) async throws -> ProcessedEvent? {
        try await store.withTransaction { transaction in
            try await transaction.processedEvent(group: group, handler: handler, eventID: eventID)
        }
    }
}

/// Lets concurrent transactions wait for each other at one point, for at most a while: a store
/// that runs one writer at a time (SQLite) never lets the second arrive before the first commits.
actor Rendezvous {
    private let parties: Int
    private var arrived = 0

    init(parties: Int) { self.parties = parties }

    func arriveAndWait(atMost limit: Duration) async {
        arrived += 1
        let deadline = ContinuousClock.now + limit
        while arrived < parties, ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(10))
        }
    }
}
