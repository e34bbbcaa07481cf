import Foundation
import Logging
import PostgresNIO
import Sluice

extension PostgresDedupeStore {
    /// The statement ``Transaction/processedEvents(group:keys:)`` runs: `$1` the group, `$2`
    /// and `$3` the handlers and event ids (text arrays of one length); public so a benchmark
    /// can run exactly it.
    public static let processedEventsSQL = """
        SELECT e.handler, e.event_id, e.payload_hash, e.processed_at, e.process_count \
        FROM UNNEST($2::text[], $3::text[]) AS k(handler, event_id) \
        CROSS JOIN LATERAL (SELECT * FROM sluice_processed_events p WHERE p.consumer_group = $1 \
        AND p.handler = k.handler AND p.event_id = k.event_id) e
        """

    /// The statement ``Transaction/markProcessed(group:marks:at:)`` runs: `$1` the group, `$2`–`$4`
    /// the handlers, event ids and payload hashes (text arrays), `$5` the counts (a bigint array),
    /// `$6` the time; public so a benchmark can run exactly it.
    public static let markProcessedBatchSQL = """
        INSERT INTO sluice_processed_events \
        (consumer_group, handler, event_id, payload_hash, processed_at, process_count) \
        SELECT $1, m.handler, m.event_id, m.payload_hash, $6, m.times \
        FROM UNNEST($2::text[], $3::text[], $4::text[], $5::bigint[]) AS m(handler, event_id, payload_hash, times) \
        ON CONFLICT (consumer_group, handler, event_id) DO UPDATE SET \
        process_count = sluice_processed_events.process_count + EXCLUDED.process_count, \
        processed_at = EXCLUDED.processed_at, payload_hash = EXCLUDED.payload_hash \
        RETURNING handler, event_id, process_count
        """

    /// One open PostgreSQL transaction on one leased connection: what a handler writes through.
    ///
    /// Portable SQL goes through ``execute(_:_:)`` and ``query(_:_:)`` with `?` placeholders;
    /// anything PostgreSQL-specific through ``connection``, which is inside the same transaction.
    /// Not thread-safe: it belongs to one transaction body.
    ///
    /// - Important: Neither the transaction nor its ``connection`` may be used after the
    ///   `withTransaction` closure returns: the connection goes back to the pool. Never run
    ///   `BEGIN`, `COMMIT` or `ROLLBACK` on it; use ``withSavepoint(_:)`` for a partial rollback.
    public final class Transaction: SQLTransaction {
        /// The leased connection the transaction runs on, for native PostgresNIO queries.
        public let connection: PostgresConnection
        private let logger: Logger
        private let statementTimeout: TimeAmount
        private var savepoints = 0

        init(connection: PostgresConnection, logger: Logger, statementTimeout: TimeAmount) {
            self.connection = connection
            self.logger = logger
            self.statementTimeout = statementTimeout
        }

        /// Always `SQLDialect/postgresql`.
        public var dialect: SQLDialect { .postgresql }

        /// The record of `eventID` having been processed by `handler` in `group`, if there is one.
        ///
        /// - Throws: `SluiceError` when the query fails.
        public func processedEvent(group: String, handler: String, eventID: String) async throws -> ProcessedEvent? {
            let step = "reading the processed-event record"
            let result = try await PostgresDedupeStore.run(
                """
                SELECT payload_hash, processed_at, process_count FROM sluice_processed_events \
                WHERE consumer_group = \(group) AND handler = \(handler) AND event_id = \(eventID)
                """,
                on: connection, logger: logger, step: step, timeout: statementTimeout)
            guard let row = result.rows.first else { return nil }
            let (payloadHash, processedAt, processCount) = try PostgresDedupeStore.decode(row, as: (String, Date, Int64).self, step: step)
            return ProcessedEvent(
                group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, processedAt: processedAt,
                processCount: Int(processCount))
        }

        /// Records that `handler` processed `eventID` with one upsert: inserted with count 1, or, when
        /// the record exists, count incremented and time and hash replaced.
        ///
        /// A concurrent transaction inserting the same record makes this one wait on the unique key
        /// until that one ends; when it committed, this one updates its record and returns 2.
        ///
        /// - Returns: The record's process count after this call.
        /// - Throws: `SluiceError` when the statement fails.
        @discardableResult
        public func markProcessed(group: String, handler: String, eventID: String, payloadHash: String, at time: Date) async throws -> Int {
            var binds = PostgresBindings(capacity: 5)
            binds.append(group)
            binds.append(handler)
            binds.append(eventID)
            binds.append(payloadHash)
            binds.append(PostgresTimestamp(date: time))
            let step = "recording the processed event"
            let result = try await PostgresDedupeStore.run(
                PostgresQuery(
                    unsafeSQL: """
                        INSERT INTO sluice_processed_events \
                        (consumer_group, handler, event_id, payload_hash, processed_at, process_count) \
                        VALUES ($1, $2, $3, $4, $5, 1) \
                        ON CONFLICT (consumer_group, handler, event_id) DO UPDATE SET \
                        process_count = sluice_processed_events.process_count + 1, \
                        processed_at = EXCLUDED.processed_at, payload_hash = EXCLUDED.payload_hash \
                        RETURNING process_count
                        """,
                    binds: binds),
                on: connection, logger: logger, step: step, timeout: statementTimeout)
            guard let row = result.rows.first else {
                throw SluiceError(code: .storeStatementFailed, message: "\(step) returned no row", isRetriable: false)
            }
            let count: Int64 = try PostgresDedupeStore.decode(row, as: Int64.self, step: step)
            return Int(count)
        }

        /// The records of every key in `keys`, in one query, so a group of records costs one round
        /// trip, not one per record. Each key is looked up by the primary key (a `LATERAL` join
        /// from the `UNNEST` of the keys): a plain join let the planner hash the whole table for
        /// every group once it had grown.
        ///
        /// - Throws: `SluiceError` when the query fails.
        public func processedEvents(group: String, keys: [ProcessedEventKey]) async throws -> [ProcessedEventKey: ProcessedEvent] {
            guard !keys.isEmpty else { return [:] }
            var binds = PostgresBindings(capacity: 3)
            binds.append(group)
            binds.append(keys.map(\.handler))
            binds.append(keys.map(\.eventID))
            let step = "reading the processed-event records"
            let result = try await PostgresDedupeStore.run(
                PostgresQuery(
                    unsafeSQL: PostgresDedupeStore.processedEventsSQL,
                    binds: binds),
                on: connection, logger: logger, step: step, timeout: statementTimeout)
            var found: [ProcessedEventKey: ProcessedEvent] = [:]
            for row in result.rows {
                let (handler, eventID, payloadHash, processedAt, processCount) =
                    try PostgresDedupeStore.decode(row, as: (String, String, String, Date, Int64).self, step: step)
                found[ProcessedEventKey(handler: handler, eventID: eventID)] = ProcessedEvent(
                    group: group, handler: handler, eventID: eventID, payloadHash: payloadHash, processedAt: processedAt,
                    processCount: Int(processCount))
            }
            return found
        }

        /// Records several processed events with one upsert (`INSERT … SELECT FROM UNNEST … ON
        /// CONFLICT DO UPDATE`), with the same semantics as the single-record one: a concurrent
        /// transaction inserting one of the records makes this one wait on the unique key until
        /// that one ends.
        ///
        /// - Returns: Each record's process count after this call, in the order of `marks`.
        /// - Throws: `SluiceError` when the statement fails.
        public func markProcessed(group: String, marks: [ProcessedEventMark], at time: Date) async throws -> [Int] {
            guard !marks.isEmpty else { return [] }
            var binds = PostgresBindings(capacity: 6)
            binds.append(group)
            binds.append(marks.map(\.key.handler))
            binds.append(marks.map(\.key.eventID))
            binds.append(marks.map(\.payloadHash))
            binds.append(marks.map { Int64(max(1, $0.count)) })
            binds.append(PostgresTimestamp(date: time))
            let step = "recording the processed events"
            let result = try await PostgresDedupeStore.run(
                PostgresQuery(
                    unsafeSQL: PostgresDedupeStore.markProcessedBatchSQL,
                    binds: binds),
                on: connection, logger: logger, step: step, timeout: statementTimeout)
            var counts: [ProcessedEventKey: Int] = [:]
            for row in result.rows {
                let (handler, eventID, count) = try PostgresDedupeStore.decode(row, as: (String, String, Int64).self, step: step)
                counts[ProcessedEventKey(handler: handler, eventID: eventID)] = Int(count)
            }
            return try marks.map { mark in
                guard let count = counts[mark.key] else {
                    throw SluiceError(
                        code: .storeStatementFailed, message: "\(step) returned no row for event \(mark.key.eventID)", isRetriable: false)
                }
                return count
            }
        }

        /// Stores the offset `group` resumes `partition` from; a stored offset never moves backwards
        /// (the greater of the stored and the new one is kept).
        ///
        /// - Throws: `SluiceError` when the statement fails.
        public func storeNextOffset(_ offset: Offset, for partition: TopicPartition, group: String) async throws {
            try await PostgresDedupeStore.run(
                """
                INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset, updated_at) \
                VALUES (\(group), \(partition.topic), \(partition.partition), \(offset.rawValue), now()) \
                ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
                next_offset = GREATEST(sluice_offsets.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at
                """,
                on: connection, logger: logger, step: "storing the next offset", timeout: statementTimeout)
        }

        /// Runs `body` inside `SAVEPOINT`: released when it returns, rolled back to (and released)
        /// when it throws, while the transaction goes on. Savepoints nest.
        ///
        /// - Throws: The body's error (after rolling back to the savepoint), or `SluiceError` when
        ///   a savepoint statement fails.
        public func withSavepoint<T>(_ body: () async throws -> T) async throws -> T {
            savepoints += 1
            let name = "sp_\(savepoints)"
            try await PostgresDedupeStore.run(
                PostgresQuery(unsafeSQL: "SAVEPOINT \(name)"), on: connection, logger: logger, step: "savepoint", timeout: statementTimeout)
            let result: T
            do {
                result = try await body()
            } catch {
                try await PostgresDedupeStore.run(
                    PostgresQuery(unsafeSQL: "ROLLBACK TO SAVEPOINT \(name)"), on: connection, logger: logger,
                    step: "rollback to savepoint", timeout: statementTimeout)
                try await PostgresDedupeStore.run(
                    PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(name)"), on: connection, logger: logger, step: "release savepoint", timeout: statementTimeout)
                throw error
            }
            try await PostgresDedupeStore.run(
                PostgresQuery(unsafeSQL: "RELEASE SAVEPOINT \(name)"), on: connection, logger: logger, step: "release savepoint", timeout: statementTimeout)
            return result
        }

        /// Runs a statement with `?` placeholders (numbered `$1…$n` before it is sent; a `?` in a
        /// string literal, quoted identifier or comment stays as it is).
        ///
        /// - Returns: How many rows it changed (0 for statements that report none).
        /// - Throws: `SluiceError`: `SluiceError/Code/storeStatementFailed` (not retriable)
        ///   with the server's message and SQLSTATE, `SluiceError/Code/storeConflict` for
        ///   serialization failures, deadlocks and unique violations, or
        ///   `SluiceError/Code/storeUnavailable` when the connection fails.
        @discardableResult
        public func execute(_ sql: String, _ arguments: [SQLValue]) async throws -> Int {
            try await run(sql, arguments).metadata.rows ?? 0
        }

        /// Runs a query with `?` placeholders and returns its rows (see `SQLRow` for how
        /// PostgreSQL types map to `SQLValue`s).
        ///
        /// - Throws: `SluiceError`, as ``execute(_:_:)`` does.
        public func query(_ sql: String, _ arguments: [SQLValue]) async throws -> [SQLRow] {
            var rows: [SQLRow] = []
            for row in try await run(sql, arguments).rows {
                rows.append(try SQLRow(postgres: row))
            }
            return rows
        }

        private func run(_ sql: String, _ arguments: [SQLValue]) async throws(SluiceError) -> PostgresQueryResult {
            let numbered = PostgresSQLText.numberingPlaceholders(in: sql)
            guard numbered.count == arguments.count else {
                throw SluiceError(
                    code: .storeStatementFailed,
                    message: "the statement has \(numbered.count) placeholders but \(arguments.count) arguments were given",
                    isRetriable: false)
            }
            var binds = PostgresBindings(capacity: arguments.count)
            for argument in arguments { binds.append(argument) }
            return try await PostgresDedupeStore.run(
                PostgresQuery(unsafeSQL: numbered.sql, binds: binds), on: connection, logger: logger, step: "statement", timeout: statementTimeout)
        }
    }
}
