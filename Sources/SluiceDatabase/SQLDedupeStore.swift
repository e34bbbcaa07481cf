import Foundation
import Logging
import Sluice
import SluicePostgres
import SluiceSQLite

/// The store `--database` opens: SQLite or PostgreSQL behind one type, so one service binary
/// runs on either and its handlers write the same SQL through ``Transaction``.
///
/// A service whose ``ConsumerServiceDefinition/Store`` is `SQLDedupeStore` gets
/// ``ConsumerServiceDefinition/openStore(database:logger:)`` for free, with its
/// ``ConsumerServiceDefinition/migrations()`` applied.
public enum SQLDedupeStore: DedupeStore {
    /// A SQLite file.
    case sqlite(SQLiteDedupeStore)
    /// A PostgreSQL database.
    case postgres(PostgresDedupeStore)

    /// The underlying store's: 1 for SQLite, the pool's size for PostgreSQL.
    public var maxConcurrentTransactions: Int {
        switch self {
        case .sqlite(let store): store.maxConcurrentTransactions
        case .postgres(let store): store.maxConcurrentTransactions
        }
    }

    /// Closes the store's connections (PostgreSQL's pool; SQLite closes with its last reference).
    public func close() async {
        if case .postgres(let store) = self { await store.close() }
    }

    /// Opens the store at `location`, applying the store's migrations and then `migrations`.
    ///
    /// - Throws: ``SluiceError`` (``SluiceError/Code/storeUnavailable``,
    ///   ``SluiceError/Code/storeMigrationFailed``).
    public static func open(
        _ location: DatabaseLocation, migrations: [StoreMigration] = [], logger: Logger
    ) async throws -> SQLDedupeStore {
        switch location {
        case .sqlite(let path):
            return .sqlite(try await SQLiteDedupeStore.open(path: path, migrations: migrations, logger: logger))
        case .postgres(let url):
            return .postgres(try await PostgresDedupeStore.open(url: url, migrations: migrations, logger: logger))
        }
    }

    /// A transaction of either store.
    public enum Transaction: SQLTransaction {
        /// A SQLite transaction (its `withDatabase` gives GRDB's `Database`).
        case sqlite(SQLiteDedupeStore.Transaction)
        /// A PostgreSQL transaction (its `connection` is PostgresNIO's).
        case postgres(PostgresDedupeStore.Transaction)

        public var dialect: SQLDialect {
            switch self {
            case .sqlite(let transaction): transaction.dialect
            case .postgres(let transaction): transaction.dialect
            }
        }

        @discardableResult
        public func execute(_ sql: String, _ arguments: [SQLValue]) async throws -> Int {
            switch self {
            case .sqlite(let transaction): try await transaction.execute(sql, arguments)
            case .postgres(let transaction): try await transaction.execute(sql, arguments)
            }
        }

        public func query(_ sql: String, _ arguments: [SQLValue]) async throws -> [SQLRow] {
            switch self {
            case .sqlite(let transaction): try await transaction.query(sql, arguments)
            case .postgres(let transaction): try await transaction.query(sql, arguments)
            }
        }

        public func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent? {
            switch self {
            case .sqlite(let transaction): try await transaction.processedEvent(group: group, handler: handler, eventID: eventID)
            case .postgres(let transaction): try await transaction.processedEvent(group: group, handler: handler, eventID: eventID)
            }
        }

        @discardableResult
        public func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws -> Int {
            switch self {
            case .sqlite(let transaction):
                try await transaction.markProcessed(group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, at: time)
            case .postgres(let transaction):
                try await transaction.markProcessed(group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, at: time)
            }
        }

        public func processedEvents(group: String, keys: [ProcessedEventKey]) async throws -> [ProcessedEventKey: ProcessedEvent] {
            switch self {
            case .sqlite(let transaction): try await transaction.processedEvents(group: group, keys: keys)
            case .postgres(let transaction): try await transaction.processedEvents(group: group, keys: keys)
            }
        }

        public func markProcessed(group: String, marks: [ProcessedEventMark], at time: Date) async throws -> [Int] {
            switch self {
            case .sqlite(let transaction): try await transaction.markProcessed(group: group, marks: marks, at: time)
            case .postgres(let transaction): try await transaction.markProcessed(group: group, marks: marks, at: time)
            }
        }

        public func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws {
            switch self {
            case .sqlite(let transaction): try await transaction.storeNextOffset(offset, for: partition, group: group)
            case .postgres(let transaction): try await transaction.storeNextOffset(offset, for: partition, group: group)
            }
        }

        public func withSavepoint<T>(_ body: () async throws -> T) async throws -> T {
            switch self {
            case .sqlite(let transaction): try await transaction.withSavepoint(body)
            case .postgres(let transaction): try await transaction.withSavepoint(body)
            }
        }
    }

    public func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        switch self {
        case .sqlite(let store): try await store.withTransaction { try await body(.sqlite($0)) }
        case .postgres(let store): try await store.withTransaction { try await body(.postgres($0)) }
        }
    }

    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        switch self {
        case .sqlite(let store): try await store.storedOffsets(group: group, partitions: partitions)
        case .postgres(let store): try await store.storedOffsets(group: group, partitions: partitions)
        }
    }

    public func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        switch self {
        case .sqlite(let store): try await store.pruneProcessedEvents(olderThan: cutoff)
        case .postgres(let store): try await store.pruneProcessedEvents(olderThan: cutoff)
        }
    }
}
