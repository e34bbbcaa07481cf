import Dispatch
import Foundation
import GRDB
import Logging
import Sluice

/// The default `DedupeStore`: one SQLite file (WAL), for a consumer service running as one
/// process (or a few on one machine).
///
/// Handlers write their own tables through ``Transaction`` (portable SQL through
/// `SQLTransaction`, or GRDB's `Database` through ``Transaction/withDatabase(_:)``); the
/// processed-event records and the partitions' next offsets live beside them in the same file,
/// so all three commit together. Transactions begin with `BEGIN IMMEDIATE`: one writer at a time,
/// other processes wait up to ``Configuration/busyTimeout``.
///
/// Tables the store owns: `sluice_processed_events`, `sluice_offsets`, `sluice_migrations`, and
/// the parking tables of `SQLParkingSchema` (in `Sluice`).
public final class SQLiteDedupeStore: DedupeStore {
    /// How the store opens its file.
    public struct Configuration: Sendable {
        /// How long a transaction waits for another process's writer before failing with
        /// `SluiceError/Code/storeUnavailable` (retriable). Default: 10 s.
        public var busyTimeout: Duration = .seconds(10)
        /// Whether each commit waits for the disk (`synchronous = FULL`). With `false`
        /// (`NORMAL`), a commit survives a crash of the process but not of the machine, and a
        /// machine crash could then lose effects whose offsets Kafka already committed. Default:
        /// `true`; group commit keeps its cost to one fsync per group of records.
        public var synchronousCommits = true
        /// Concurrent readers (offset lookups, tooling). Default: 4.
        public var maximumReaderCount = 4

        /// The defaults described on each property.
        public init() {}
    }

    private let pool: DatabasePool
    private let lease = SQLiteWriterLease()
    private let writerQueue = DispatchQueue(label: "sluice.sqlite.writer")
    private let readerQueue = DispatchQueue(label: "sluice.sqlite.reader", attributes: .concurrent)
    private let logger: Logger

    /// The database file.
    public let path: String

    private init(pool: DatabasePool, path: String, logger: Logger) {
        self.pool = pool
        self.path = path
        self.logger = logger
    }

    /// Opens (creating when needed) the store at `path` and applies its migrations, then
    /// `migrations` (the service's own tables), each once.
    ///
    /// Safe when several processes open a fresh file at once: migrations run in one
    /// `BEGIN IMMEDIATE` transaction, so the others wait and then find them applied.
    ///
    /// - Throws: `SluiceError` with `SluiceError/Code/storeUnavailable` when the file cannot
    ///   be opened, or `SluiceError/Code/storeMigrationFailed` naming the migration that failed.
    public static func open(
        path: String, migrations: [StoreMigration] = [], configuration: Configuration = Configuration(), logger: Logger
    ) async throws -> SQLiteDedupeStore {
        var grdb = GRDB.Configuration()
        let busySeconds = Double(configuration.busyTimeout.components.seconds)
            + Double(configuration.busyTimeout.components.attoseconds) / 1e18
        grdb.busyMode = .timeout(busySeconds)
        grdb.maximumReaderCount = configuration.maximumReaderCount
        let synchronous = configuration.synchronousCommits ? "FULL" : "NORMAL"
        grdb.prepareDatabase { database in
            try database.execute(sql: "PRAGMA synchronous = \(synchronous)")
        }
        grdb.label = "sluice.dedupe"
        let settings = grdb
        let pool: DatabasePool = try await blocking(DispatchQueue.global()) {
            do {
                return try DatabasePool(path: path, configuration: settings)
            } catch {
                throw unavailable("cannot open the SQLite store at \(path): \(error)", underlying: error)
            }
        }
        let store = SQLiteDedupeStore(pool: pool, path: path, logger: logger)
        do {
            try await store.migrate(Self.ownMigrations + migrations)
        } catch let error as SluiceError where error.code == .storeUnavailable {
            // Name the file: "attempt to write a readonly database" alone does not say which.
            throw SluiceError(
                code: error.code, message: "the SQLite store at \(path): \(error.message)", isRetriable: error.isRetriable,
                underlying: error)
        }
        return store
    }

    /// The store's own schema. Never edit an applied migration; add one.
    static let ownMigrations: [StoreMigration] = [
        StoreMigration(id: "sluice-1-processed-events-and-offsets", sql: """
            CREATE TABLE sluice_processed_events (
                consumer_group TEXT NOT NULL,
                handler TEXT NOT NULL,
                event_id TEXT NOT NULL,
                payload_hash TEXT NOT NULL,
                processed_at REAL NOT NULL,
                process_count INTEGER NOT NULL DEFAULT 1,
                PRIMARY KEY (consumer_group, handler, event_id)
            ) WITHOUT ROWID;
            CREATE INDEX sluice_processed_events_by_time ON sluice_processed_events (processed_at);
            CREATE TABLE sluice_offsets (
                consumer_group TEXT NOT NULL,
                topic TEXT NOT NULL,
                partition INTEGER NOT NULL,
                next_offset INTEGER NOT NULL,
                updated_at REAL NOT NULL,
                PRIMARY KEY (consumer_group, topic, partition)
            ) WITHOUT ROWID;
            """),
        SQLParkingSchema.migration,
    ]

    private func migrate(_ migrations: [StoreMigration]) async throws {
        try await withWriterSession { session in
            try await session.perform { database in
                do {
                    try database.execute(sql: "BEGIN IMMEDIATE")
                } catch {
                    throw Self.translate(error, step: "migrations")
                }
                do {
                    try database.execute(sql: """
                        CREATE TABLE IF NOT EXISTS sluice_migrations (id TEXT PRIMARY KEY NOT NULL, applied_at REAL NOT NULL)
                        """)
                    let applied = Set(try String.fetchAll(database, sql: "SELECT id FROM sluice_migrations"))
                    for migration in migrations where !applied.contains(migration.id) {
                        do {
                            try database.execute(sql: migration.script(for: .sqlite))
                        } catch {
                            throw SluiceError(
                                code: .storeMigrationFailed,
                                message: "migration \(migration.id) failed: \(Self.describe(error))", underlying: error)
                        }
                        try database.execute(
                            sql: "INSERT INTO sluice_migrations (id, applied_at) VALUES (?, ?)",
                            arguments: [migration.id, Date().timeIntervalSince1970])
                    }
                    try database.execute(sql: "COMMIT")
                } catch {
                    try? database.execute(sql: "ROLLBACK")
                    throw error as? SluiceError ?? Self.translate(error, step: "migrations")
                }
            }
        }
    }

    // MARK: - Transactions

    /// An open transaction on the store's writer connection.
    ///
    /// - Important: Valid only inside the body it was given to; its methods must not be called
    ///   concurrently with each other (a handler awaits each one).
    public final class Transaction: SQLTransaction {
        fileprivate let session: SQLiteWriterSession
        private var savepointDepth = 0

        fileprivate init(session: SQLiteWriterSession) {
            self.session = session
        }

        public var dialect: SQLDialect { .sqlite }

        /// Runs `body` with GRDB's `Database` for this transaction (on the writer's thread).
        /// Use it for GRDB records and query interface; do not begin or commit transactions.
        public func withDatabase<T>(_ body: @escaping (Database) throws -> T) async throws -> T {
            try await session.perform { database in
                // SQLite rolls a transaction back by itself on some errors (SQLITE_FULL, IOERR,
                // NOMEM). A statement after that would run in autocommit mode, outside the
                // transaction whose outcome the pipeline reports: refuse it, so the transaction
                // fails as a whole and every record in it is redone.
                guard database.isInsideTransaction else {
                    throw SQLiteDedupeStore.unavailable("the transaction was rolled back by SQLite after an error; its records are redone")
                }
                do {
                    return try body(database)
                } catch {
                    throw SQLiteDedupeStore.translate(error, step: "statement")
                }
            }
        }

        @discardableResult
        public func execute(_ sql: String, _ arguments: [SQLValue]) async throws -> Int {
            try await withDatabase { database in
                // Cached: a handler runs the same statements for every record.
                try database.cachedStatement(sql: sql).execute(arguments: StatementArguments(arguments.map { $0.databaseValue }))
                return database.changesCount
            }
        }

        public func query(_ sql: String, _ arguments: [SQLValue]) async throws -> [SQLRow] {
            try await withDatabase { database in
                try Row.fetchAll(database.cachedStatement(sql: sql), arguments: StatementArguments(arguments.map { $0.databaseValue })).map { row in
                    SQLRow(columns: Array(row.columnNames), values: row.databaseValues.map(SQLValue.init))
                }
            }
        }

        public func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent? {
            try await withDatabase { database in
                try Row.fetchOne(database.cachedStatement(sql: """
                    SELECT payload_hash, processed_at, process_count FROM sluice_processed_events
                    WHERE consumer_group = ? AND handler = ? AND event_id = ?
                    """), arguments: [group, handler, eventID]).map { row in
                    ProcessedEvent(
                        group: group, handler: handler, eventID: eventID, payloadHash: row[0],
                        processedAt: Date(timeIntervalSince1970: row[1]), processCount: row[2])
                }
            }
        }

        @discardableResult
        public func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws -> Int {
            try await withDatabase { database in
                try Int.fetchOne(database.cachedStatement(sql: """
                    INSERT INTO sluice_processed_events (consumer_group, handler, event_id, payload_hash, processed_at, process_count)
                    VALUES (?, ?, ?, ?, ?, 1)
                    ON CONFLICT (consumer_group, handler, event_id) DO UPDATE SET
                        process_count = process_count + 1, processed_at = excluded.processed_at, payload_hash = excluded.payload_hash
                    RETURNING process_count
                    """), arguments: [group, handler, eventID, payloadHash, time.timeIntervalSince1970]) ?? 1
            }
        }

        public func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws {
            _ = try await withDatabase { database in
                try database.cachedStatement(sql: """
                    INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
                    ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
                        next_offset = max(next_offset, excluded.next_offset), updated_at = excluded.updated_at
                    """).execute(arguments: [group, partition.topic, partition.partition, offset.rawValue, Date().timeIntervalSince1970])
            }
        }

        public func withSavepoint<T>(_ body: () async throws -> T) async throws -> T {
            // Named by nesting depth: a savepoint is released before its next sibling begins, so
            // siblings can share a name, and the statements stay the same few cached ones. (A
            // name per savepoint made a store-wide transaction of a thousand records compile and
            // cache two thousand statements.)
            savepointDepth += 1
            defer { savepointDepth -= 1 }
            let statements = Self.savepointStatements(depth: savepointDepth)
            try await execute(statements.begin)
            let result: T
            do {
                result = try await body()
            } catch {
                _ = try? await execute(statements.rollback)
                _ = try? await execute(statements.release)
                throw error
            }
            try await execute(statements.release)
            return result
        }

        private static let commonSavepoints = (1...4).map(savepointSQL)

        private static func savepointStatements(depth: Int) -> (begin: String, rollback: String, release: String) {
            depth <= commonSavepoints.count ? commonSavepoints[depth - 1] : savepointSQL(depth)
        }

        private static func savepointSQL(_ depth: Int) -> (begin: String, rollback: String, release: String) {
            ("SAVEPOINT sluice_\(depth)", "ROLLBACK TO SAVEPOINT sluice_\(depth)", "RELEASE SAVEPOINT sluice_\(depth)")
        }
    }

    public func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        let path = self.path
        return try await withWriterSession { session in
            try await session.perform { database in
                do {
                    try database.execute(sql: "BEGIN IMMEDIATE")
                } catch {
                    throw Self.translate(error, step: "begin on \(path)")
                }
            }
            let result: T
            do {
                // The body runs on the writer thread: its statements need no hop.
                let transaction = Transaction(session: session)
                result = try await withTaskExecutorPreference(session) { try await body(transaction) }
            } catch {
                _ = try? await session.perform { database in try database.execute(sql: "ROLLBACK") }
                throw error
            }
            try await session.perform { database in
                guard database.isInsideTransaction else {
                    throw Self.unavailable("commit: the transaction was rolled back by SQLite after an error")
                }
                do {
                    try database.execute(sql: "COMMIT")
                } catch {
                    // A failed COMMIT may leave the transaction open (SQLITE_BUSY): end it.
                    if database.isInsideTransaction { try? database.execute(sql: "ROLLBACK") }
                    throw Self.translate(error, step: "commit on \(path)")
                }
            }
            return result
        }
    }

    /// Runs `body` holding the writer connection: waits for the in-process lease (async), then
    /// parks a GCD thread inside GRDB's writer until `body` is done.
    private func withWriterSession<T>(_ body: (SQLiteWriterSession) async throws -> T) async throws -> T {
        try await lease.acquire()
        defer { lease.release() }
        let session = SQLiteWriterSession()
        let pool = self.pool
        let served = DispatchGroup()
        served.enter()
        writerQueue.async {
            pool.writeWithoutTransaction { database in session.serve(database) }
            served.leave()
        }
        do {
            let result = try await body(session)
            session.finish()
            await Self.wait(for: served)
            return result
        } catch {
            session.finish()
            await Self.wait(for: served)
            throw error
        }
    }

    private static func wait(for group: DispatchGroup) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            group.notify(queue: .global()) { continuation.resume() }
        }
    }

    // MARK: - Outside transactions

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        let pool = self.pool
        return try await Self.blocking(readerQueue) {
            do {
                return try pool.read { database in
                    var result: [TopicPartition: Offset] = [:]
                    let wanted = Set(partitions)
                    let rows = try Row.fetchAll(
                        database, sql: "SELECT topic, partition, next_offset FROM sluice_offsets WHERE consumer_group = ?",
                        arguments: [group])
                    for row in rows {
                        let partition = TopicPartition(topic: row[0], partition: row[1])
                        if wanted.contains(partition) { result[partition] = Offset(row[2] as Int64) }
                    }
                    return result
                }
            } catch {
                throw Self.translate(error, step: "read offsets")
            }
        }
    }

    public func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        try await withWriterSession { session in
            try await session.perform { database in
                do {
                    try database.execute(
                        sql: "DELETE FROM sluice_processed_events WHERE processed_at < ?", arguments: [cutoff.timeIntervalSince1970])
                    return database.changesCount
                } catch {
                    throw Self.translate(error, step: "prune")
                }
            }
        }
    }

    /// Runs a read-only query outside any transaction (tooling, tests, health checks).
    public func read(_ sql: String, _ arguments: [SQLValue] = []) async throws -> [SQLRow] {
        let pool = self.pool
        return try await Self.blocking(readerQueue) {
            do {
                return try pool.read { database in
                    try Row.fetchAll(database, sql: sql, arguments: StatementArguments(arguments.map { $0.databaseValue })).map { row in
                        SQLRow(columns: Array(row.columnNames), values: row.databaseValues.map(SQLValue.init))
                    }
                }
            } catch {
                throw Self.translate(error, step: "read")
            }
        }
    }

    /// Runs blocking SQLite work on `queue`, off the cooperative pool.
    private static func blocking<T: Sendable>(_ queue: DispatchQueue, _ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { continuation in
            queue.async { continuation.resume(with: Result { try work() }) }
        }
    }

    // MARK: - Errors

    static func unavailable(_ message: String, underlying: (any Error)? = nil) -> SluiceError {
        SluiceError(code: .storeUnavailable, message: message, isRetriable: true, underlying: underlying)
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? DatabaseError { return "\(error.resultCode): \(error.message ?? "")" }
        return String(describing: error)
    }

    /// Maps SQLite's errors onto the store's codes: contention and I/O are retriable, a statement
    /// the database refuses is not.
    static func translate(_ error: any Error, step: String) -> SluiceError {
        if let error = error as? SluiceError { return error }
        guard let error = error as? DatabaseError else {
            return SluiceError(code: .storeStatementFailed, message: "\(step): \(error)", isRetriable: false, underlying: error)
        }
        let message = "\(step): \(describe(error))"
        switch error.resultCode {
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            // Another connection (another process) held the write lock past the busy timeout: the
            // store is unavailable until it lets go, which is nothing a retry of the event fixes.
            return SluiceError(
                code: .storeUnavailable, message: "\(message) (another connection holds the write lock past the busy timeout)",
                isRetriable: true, underlying: error)
        case .SQLITE_READONLY, .SQLITE_PERM:
            return SluiceError(
                code: .storeUnavailable,
                message: "\(message) (the database file or its directory cannot be written: check its permissions and the file system)",
                isRetriable: true, underlying: error)
        case .SQLITE_IOERR, .SQLITE_FULL, .SQLITE_CANTOPEN, .SQLITE_PROTOCOL, .SQLITE_NOMEM, .SQLITE_INTERRUPT:
            return SluiceError(code: .storeUnavailable, message: message, isRetriable: true, underlying: error)
        default:
            return SluiceError(code: .storeStatementFailed, message: message, isRetriable: false, underlying: error)
        }
    }
}

extension SQLValue {
    var databaseValue: DatabaseValue {
        switch self {
        case .null: .null
        case .integer(let value): value.databaseValue
        case .real(let value): value.databaseValue
        case .text(let value): value.databaseValue
        case .blob(let value): Data(value).databaseValue
        }
    }

    init(_ value: DatabaseValue) {
        switch value.storage {
        case .null: self = .null
        case .int64(let value): self = .integer(value)
        case .double(let value): self = .real(value)
        case .string(let value): self = .text(value)
        case .blob(let data): self = .blob(Array(data))
        }
    }
}
