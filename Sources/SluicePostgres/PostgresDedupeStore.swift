import Foundation
import Logging
import PostgresNIO
import Sluice

/// A `DedupeStore` in PostgreSQL: the store for a consumer group spread over many machines.
///
/// Processed-event records live in `sluice_processed_events`, stored offsets in `sluice_offsets`,
/// applied migrations in `sluice_migrations`. Each transaction runs on one connection leased from a
/// `PostgresClient` pool that the store owns and runs; handlers write their own tables through the
/// same transaction, with portable SQL (``Transaction/execute(_:_:)``) or natively
/// (``Transaction/connection``).
///
/// ```swift
/// let store = try await PostgresDedupeStore.open(
///     url: "postgres://sluice:secret@db.internal:5432/orders", migrations: migrations, logger: logger)
/// defer { Task { await store.close() } }
/// ```
///
/// - Important: Call ``close()`` when done: it stops the pool's background task and closes the
///   connections. A transaction must not outlive its `withTransaction` closure.
public final class PostgresDedupeStore: DedupeStore {
    /// The default number of connections the pool opens at most.
    public static let defaultPoolSize = 10

    /// How long a call waits for a pooled connection by default: ``open(url:migrations:poolSize:leaseTimeout:statementTimeout:logger:)``.
    public static let defaultLeaseTimeout: Duration = .seconds(10)

    /// How long a statement may go unanswered by default: ``open(url:migrations:poolSize:leaseTimeout:statementTimeout:logger:)``.
    public static let defaultStatementTimeout: Duration = .seconds(60)

    let client: PostgresClient
    let logger: Logger
    /// How long the store waits for the answer to one of its statements before it gives the
    /// connection up as dead.
    let statementTimeout: TimeAmount
    /// How long a call waits for a pooled connection before it throws STORE_UNAVAILABLE.
    let leaseTimeout: Duration
    private let runTask: Task<Void, Never>
    /// One transaction per pooled connection.
    public let maxConcurrentTransactions: Int

    /// Starts the pool's run loop before anything can lease from it.
    ///
    /// `@concurrent`, so that it is on the global executor that `PostgresClient.run()` runs on:
    /// the immediate task then enters `run()` synchronously, before this returns, and the pool is
    /// running by the time ``open(url:migrations:poolSize:leaseTimeout:statementTimeout:logger:)`` leases for
    /// the migrations. (A plain `Task` started it some time later: the first lease could come
    /// first, and PostgresNIO warned that `run()` had not been called yet.)
    @concurrent
    private static func start(
        _ client: PostgresClient, poolSize: Int, leaseTimeout: Duration, statementTimeout: Duration, logger: Logger
    ) async -> PostgresDedupeStore {
        let runTask = await startRunning(client)
        return PostgresDedupeStore(
            client: client, runTask: runTask, poolSize: poolSize, leaseTimeout: leaseTimeout, statementTimeout: statementTimeout,
            logger: logger)
    }

    /// Starts `client.run()` in a task that has entered it when this returns (see
    /// ``start(_:poolSize:leaseTimeout:statementTimeout:logger:)``).
    @concurrent
    static func startRunning(_ client: PostgresClient) async -> Task<Void, Never> {
        if #available(macOS 26.0, *) {
            return Task.immediate { await client.run() }
        }
        return Task { await client.run() }
    }

    private init(
        client: PostgresClient, runTask: Task<Void, Never>, poolSize: Int, leaseTimeout: Duration, statementTimeout: Duration,
        logger: Logger
    ) {
        self.client = client
        self.leaseTimeout = max(.milliseconds(1), leaseTimeout)
        self.runTask = runTask
        self.maxConcurrentTransactions = poolSize
        let (seconds, attoseconds) = statementTimeout.components
        self.statementTimeout = .nanoseconds(max(1_000_000, seconds.multipliedReportingOverflow(by: 1_000_000_000).partialValue + attoseconds / 1_000_000_000))
        self.logger = logger
    }

    deinit {
        runTask.cancel()
    }

    /// Connects to the database at `url` and brings its schema up to date: the store's own tables,
    /// then `migrations`.
    ///
    /// Migrations run in one transaction holding a PostgreSQL advisory lock, each applied once and
    /// recorded in `sluice_migrations`, so several processes opening a fresh database at once all
    /// come up, and a reopened store runs none again.
    ///
    /// - Parameters:
    ///   - url: `postgres://user:password@host:port/database?sslmode=…` (or `postgresql://`).
    ///     The port defaults to 5432, `sslmode` to `prefer`.
    ///   - migrations: The service's own schema changes, in order; see `StoreMigration`.
    ///   - poolSize: How many connections the pool opens at most. Default: ``defaultPoolSize`` (10).
    ///   - leaseTimeout: How long a call waits for a pooled connection (the pool opens one when
    ///     none is free and fewer than `poolSize` are open) before it throws
    ///     `SluiceError/Code/storeUnavailable`: while the server is down, calls fail within this
    ///     time. Default: ``defaultLeaseTimeout`` (10 s).
    ///   - statementTimeout: How long one statement may go unanswered before the store gives its
    ///     connection up as dead: it closes the connection and the call throws
    ///     `SluiceError/Code/storeUnavailable`. A bound on a lost server (a network that drops
    ///     packets without closing the connection), not on slow queries: keep it above the
    ///     longest statement a handler runs. Default: ``defaultStatementTimeout`` (60 s).
    ///   - logger: Where the store and its pool log.
    /// - Returns: The open store.
    /// - Throws: `SluiceError` with `SluiceError/Code/storeLocationInvalid` for a URL it cannot
    ///   use (the message never shows the password), `SluiceError/Code/storeUnavailable` when the
    ///   database cannot be reached, `SluiceError/Code/storeMigrationFailed` naming the migration
    ///   that failed.
    public static func open(
        url: String,
        migrations: [StoreMigration] = [],
        poolSize: Int = defaultPoolSize,
        leaseTimeout: Duration = defaultLeaseTimeout,
        statementTimeout: Duration = defaultStatementTimeout,
        logger: Logger
    ) async throws -> PostgresDedupeStore {
        let location = try PostgresStoreLocation(url: url)
        // The pool retries a failing server for a minute before failing a lease; one direct
        // connection first fails fast, with the reason (refused, authentication, no such database).
        try await probe(location, logger: logger)
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.username, password: location.password,
            database: location.database, tls: location.tls)
        configuration.options.maximumConnections = max(1, poolSize)
        let store = await start(
            PostgresClient(configuration: configuration, backgroundLogger: logger), poolSize: max(1, poolSize),
            leaseTimeout: leaseTimeout, statementTimeout: statementTimeout, logger: logger)
        do {
            try await store.migrate(PostgresStoreSchema.migrations + migrations)
        } catch {
            await store.close()
            throw error
        }
        logger.debug("opened the PostgreSQL dedupe store", metadata: ["store.location": "\(location.description)"])
        return store
    }

    /// Connects once to `location` and disconnects.
    ///
    /// - Throws: ``SluiceError`` with ``SluiceError/Code/storeUnavailable`` saying why it could not connect.
    private static func probe(_ location: PostgresStoreLocation, logger: Logger) async throws(SluiceError) {
        do {
            let configuration = PostgresConnection.Configuration(
                host: location.host, port: location.port, username: location.username, password: location.password,
                database: location.database, tls: try location.connectionTLS())
            let connection = try await PostgresConnection.connect(configuration: configuration, id: 0, logger: logger)
            try? await connection.close()
        } catch {
            var reason: String
            if let error = error as? PSQLError {
                if let info = error.serverInfo {
                    reason = "\(info[.message] ?? "server error") (SQLSTATE \(info[.sqlState] ?? "?????"))"
                } else {
                    reason = "\(error.code)"
                    if let underlying = error.underlying { reason += ": \(underlying)" }
                }
            } else {
                reason = "\(error)"
            }
            throw SluiceError(code: .storeUnavailable, message: "cannot connect to \(location.description): \(reason)", isRetriable: true)
        }
    }

    /// Closes the pool's connections and stops its background task; the store is unusable after.
    public func close() async {
        runTask.cancel()
        await runTask.value
    }

    /// Runs `body` in one transaction on one leased connection: `BEGIN`, the body, then `COMMIT`
    /// when it returns or `ROLLBACK` when it throws.
    ///
    /// Statements run at PostgreSQL's default isolation, read committed; the processed-event record's
    /// unique key is what keeps two consumers from both recording an event (see
    /// ``Transaction/markProcessed(group:handler:eventID:payloadHash:at:)``).
    ///
    /// - Parameter body: The work to do; it must not keep the transaction beyond its return.
    /// - Returns: What `body` returned, once committed.
    /// - Throws: The body's own error, unchanged, after rolling back; or `SluiceError`:
    ///   `SluiceError/Code/storeUnavailable` when no connection can be had or it fails (the
    ///   message names the step: begin, commit), `SluiceError/Code/storeConflict` when the commit
    ///   meets a serialization failure, deadlock or unique violation (both retriable), or
    ///   `SluiceError/Code/storeStatementFailed` when the body swallowed a failed statement, which
    ///   made PostgreSQL roll the transaction back at commit.
    public func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        do {
            return try await withLease { connection in
                try await Self.transaction(on: connection, logger: logger, timeout: statementTimeout, body)
            }
        } catch let failure as BodyFailure {
            throw failure.error
        } catch {
            throw SluiceError.postgres(error, step: "begin (leasing a connection)")
        }
    }

    /// The body's own error, boxed so that it is told apart from the pool's and rethrown as is.
    private struct BodyFailure: Error {
        var error: any Error
    }

    nonisolated(nonsending) private static func transaction<T: Sendable>(
        on connection: PostgresConnection, logger: Logger, timeout: TimeAmount, _ body: (Transaction) async throws -> T
    ) async throws -> T {
        try await run("BEGIN", on: connection, logger: logger, step: "begin", timeout: timeout)
        let transaction = Transaction(connection: connection, logger: logger, statementTimeout: timeout)
        let result: T
        do {
            result = try await body(transaction)
        } catch {
            await rollback(on: connection, logger: logger, timeout: timeout)
            throw BodyFailure(error: error)
        }
        // When the connection fails while COMMIT is under way, whether it committed is unknown:
        // the call throws STORE_UNAVAILABLE either way, and the records' redelivery finds out
        // through their processed-event records.
        let commit = try await run("COMMIT", on: connection, logger: logger, step: "commit", timeout: timeout)
        if commit.metadata.command == "ROLLBACK" {
            // PostgreSQL answers COMMIT with ROLLBACK when a statement failed earlier in the
            // transaction (an error the body caught and did not rethrow): nothing was written.
            throw SluiceError(
                code: .storeStatementFailed,
                message: "commit failed: a statement failed earlier in the transaction, so PostgreSQL rolled it back",
                isRetriable: false)
        }
        return result
    }

    private static func rollback(on connection: PostgresConnection, logger: Logger, timeout: TimeAmount) async {
        do {
            try await run("ROLLBACK", on: connection, logger: logger, step: "rollback", timeout: timeout)
        } catch {
            // A connection whose state is unknown must not go back to the pool mid-transaction.
            // (One that is closed already rolled back on the server.)
            if !connection.isClosed {
                logger.warning("rollback failed; closing the connection", metadata: ["error.message": "\(error.message)"])
            }
            try? await connection.close()
        }
    }

    /// The next offsets stored for these partitions of `group`; partitions without one are absent.
    ///
    /// - Throws: `SluiceError` when the query fails (`SluiceError/Code/storeUnavailable` when the
    ///   database cannot be reached).
    public func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        guard !partitions.isEmpty else { return [:] }
        let topics = Array(Set(partitions.map(\.topic)))
        let wanted = Set(partitions)
        var binds = PostgresBindings(capacity: 2)
        binds.append(group)
        binds.append(topics)
        let rows = try await withConnection(step: "reading stored offsets") { connection in
            try await Self.run(
                PostgresQuery(
                    unsafeSQL: "SELECT topic, partition, next_offset FROM sluice_offsets WHERE consumer_group = $1 AND topic = ANY($2)",
                    binds: binds),
                on: connection, logger: logger, step: "reading stored offsets", timeout: statementTimeout
            ).rows
        }
        var offsets: [TopicPartition: Offset] = [:]
        for row in rows {
            let (topic, partition, nextOffset) = try Self.decode(row, as: (String, Int32, Int64).self, step: "reading stored offsets")
            let key = TopicPartition(topic: topic, partition: partition)
            if wanted.contains(key) { offsets[key] = Offset(nextOffset) }
        }
        return offsets
    }

    /// Deletes processed-event records whose `processed_at` is before `cutoff` (indexed).
    ///
    /// - Returns: How many records were deleted.
    /// - Throws: `SluiceError` when the statement fails.
    public func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        var binds = PostgresBindings(capacity: 1)
        binds.append(PostgresTimestamp(date: cutoff))
        return try await withConnection(step: "pruning processed events") { connection in
            try await Self.run(
                PostgresQuery(unsafeSQL: "DELETE FROM sluice_processed_events WHERE processed_at < $1", binds: binds),
                on: connection, logger: logger, step: "pruning processed events", timeout: statementTimeout
            ).metadata.rows ?? 0
        }
    }

    /// Runs `body` on a leased connection outside any transaction, mapping the pool's errors.
    private func withConnection<T: Sendable>(step: String, _ body: (PostgresConnection) async throws -> T) async throws -> T {
        do {
            return try await withLease { connection in try await body(connection) }
        } catch {
            throw SluiceError.postgres(error, step: step)
        }
    }

    // MARK: - Migrations

    /// Applies the migrations not yet recorded, in order, in one transaction under the advisory lock.
    private func migrate(_ migrations: [StoreMigration]) async throws {
        let logger = logger
        let timeout = statementTimeout
        try await withTransaction { transaction in
            let connection = transaction.connection
            try await Self.run(
                "SELECT pg_advisory_xact_lock(\(PostgresStoreSchema.migrationLockKey))", on: connection, logger: logger,
                step: "locking the migrations", timeout: timeout)
            try await Self.run(
                PostgresQuery(unsafeSQL: PostgresStoreSchema.migrationsTable), on: connection, logger: logger,
                step: "creating sluice_migrations", timeout: timeout)
            let applied = try await Self.run(
                "SELECT id FROM sluice_migrations", on: connection, logger: logger, step: "reading applied migrations", timeout: timeout)
            var appliedIDs = Set<String>()
            for row in applied.rows {
                appliedIDs.insert(try Self.decode(row, as: String.self, step: "reading applied migrations"))
            }
            for migration in migrations where !appliedIDs.contains(migration.id) {
                do {
                    for statement in PostgresSQLText.statements(in: migration.script(for: .postgresql)) {
                        try await Self.run(PostgresQuery(unsafeSQL: statement), on: connection, logger: logger, step: "migration \(migration.id)", timeout: timeout)
                    }
                    try await Self.run(
                        "INSERT INTO sluice_migrations (id, applied_at) VALUES (\(migration.id), now())", on: connection,
                        logger: logger, step: "recording migration \(migration.id)", timeout: timeout)
                } catch let error as SluiceError {
                    throw SluiceError(
                        code: .storeMigrationFailed, message: "migration '\(migration.id)' failed: \(error.message)",
                        isRetriable: false, underlying: error)
                }
                appliedIDs.insert(migration.id)
                logger.info("applied store migration", metadata: ["store.migration": "\(migration.id)"])
            }
        }
    }

    // MARK: - Running statements

    /// Runs `query` and collects its rows and command tag, waiting at most `timeout` for them.
    ///
    /// Every call ends: with the result, with the statement's error, at once with
    /// `STORE_UNAVAILABLE` when the connection is closed already, or with `STORE_UNAVAILABLE`
    /// after `timeout`, the connection closed. PostgresNIO never answers a query sent on a
    /// connection once its channel is closed (the server went away): the query is dropped on the
    /// torn-down pipeline and its future never completes. That is how a transaction whose server
    /// crashed hung in its ROLLBACK, holding its group-commit runner and its lease for good. So
    /// the query is sent from the connection's event loop, where the channel cannot close
    /// between the check and the send; the timeout bounds a server that is gone without the
    /// connection knowing (a network that drops packets).
    ///
    /// - Throws: ``SluiceError`` (see ``SluiceError/postgres(_:step:)``).
    @discardableResult
    static func run(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger, step: String, timeout: TimeAmount)
        async throws(SluiceError) -> PostgresQueryResult
    {
        do {
            return try await send(query, on: connection, logger: logger, timeout: timeout).get()
        } catch let error as StatementFailure {
            throw SluiceError(code: .storeUnavailable, message: "\(step) failed: \(error.reason)", isRetriable: true)
        } catch {
            throw SluiceError.postgres(error, step: step)
        }
    }

    /// Why a statement got no answer.
    struct StatementFailure: Error {
        var reason: String
    }

    /// Sends `query` on `connection` from its event loop, failing at once when it is closed and
    /// after `timeout` when it does not answer (then closing it).
    private static func send(_ query: PostgresQuery, on connection: PostgresConnection, logger: Logger, timeout: TimeAmount)
        -> EventLoopFuture<PostgresQueryResult>
    {
        let eventLoop = connection.eventLoop
        return eventLoop.flatSubmit {
            guard !connection.isClosed else {
                return eventLoop.makeFailedFuture(
                    StatementFailure(reason: "the connection to the database is closed (the server went away)"))
            }
            let promise = eventLoop.makePromise(of: PostgresQueryResult.self)
            let deadline = eventLoop.scheduleTask(in: timeout) {
                // The first completion wins: the query's own failure, once the connection is
                // closed, comes after this one.
                promise.fail(
                    StatementFailure(
                        reason: "no answer from the database within \(Duration.nanoseconds(timeout.nanoseconds)); closed the connection"))
                let _: EventLoopFuture<Void> = connection.close()
            }
            connection.query(query, logger: logger).whenComplete { result in
                deadline.cancel()
                promise.completeWith(result)
            }
            return promise.futureResult
        }
    }

    /// Decodes `row` as `type`, mapping decoding errors.
    static func decode<each Column: PostgresDecodable>(_ row: PostgresRow, as type: (repeat each Column).Type, step: String)
        throws(SluiceError) -> (repeat each Column)
    {
        do {
            return try row.decode(type)
        } catch {
            throw SluiceError.postgres(error, step: step)
        }
    }
}

extension PostgresStoreLocation {
    /// The TLS configuration of ``tlsMode`` and whether TLS is required; `nil` for `disable`.
    var tlsSetting: (configuration: TLSConfiguration, isRequired: Bool)? {
        var configuration = TLSConfiguration.makeClientConfiguration()
        switch tlsMode {
        case .disable:
            return nil
        case .allow, .prefer:
            configuration.certificateVerification = .none
            return (configuration, false)
        case .require:
            configuration.certificateVerification = .none
            return (configuration, true)
        case .verifyCA:
            configuration.certificateVerification = .noHostnameVerification
            return (configuration, true)
        case .verifyFull:
            return (configuration, true)
        }
    }

    /// The PostgresNIO TLS setting of the pool.
    var tls: PostgresClient.Configuration.TLS {
        guard let setting = tlsSetting else { return .disable }
        return setting.isRequired ? .require(setting.configuration) : .prefer(setting.configuration)
    }

    /// The TLS setting of a single connection (the start-up probe).
    func connectionTLS() throws -> PostgresConnection.Configuration.TLS {
        guard let setting = tlsSetting else { return .disable }
        let context = try NIOSSLContext(configuration: setting.configuration)
        return setting.isRequired ? .require(context) : .prefer(context)
    }
}
