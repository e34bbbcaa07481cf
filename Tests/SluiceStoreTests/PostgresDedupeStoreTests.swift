import Foundation
import Logging
import PostgresNIO
import Sluice
import Testing

@testable import SluicePostgres

/// ``PostgresDedupeStore`` against a real PostgreSQL server: the shared conformance checks, each on
/// a fresh database, then what only PostgreSQL has.
@Suite(.enabled(if: !PostgresTestDatabase.isSkipped, "SLUICE_SKIP_POSTGRES=1"))
struct PostgresDedupeStoreTests {
    typealias Conformance = DedupeStoreConformance

    private func conformance(_ check: (@escaping Conformance.Open<PostgresDedupeStore>) async throws -> Void) async throws {
        try await PostgresTestDatabase.with { database in try await check(database.open) }
    }

    // MARK: Conformance

    @Test func commitMakesWritesVisibleTogether() async throws { try await conformance(Conformance.commitMakesWritesVisibleTogether) }
    @Test func throwingBodyLeavesNoTrace() async throws { try await conformance(Conformance.throwingBodyLeavesNoTrace) }
    @Test func savepointRollbackUndoesOnlyItsOwnWrites() async throws {
        try await conformance(Conformance.savepointRollbackUndoesOnlyItsOwnWrites)
    }
    @Test func markProcessedCountsReprocessing() async throws { try await conformance(Conformance.markProcessedCountsReprocessing) }
    @Test func batchLookupAndMarksMatchTheSingleForms() async throws {
        try await conformance(Conformance.batchLookupAndMarksMatchTheSingleForms)
    }
    @Test func concurrentRecordingCommitsOnce() async throws {
        try await PostgresTestDatabase.with { database in
            let outcomes = try await Conformance.concurrentRecordingCommitsOnce(database.open)
            // Both run at once: the loser's insert waits on the key until the winner commits, then
            // counts 2, and the loser rolls back.
            #expect(Set(outcomes) == [.committed, .conflict])
        }
    }
    @Test func offsetsArePerPartitionAndNeverMoveBackwards() async throws {
        try await conformance(Conformance.offsetsArePerPartitionAndNeverMoveBackwards)
    }
    @Test func pruneRemovesExactlyOlderRecords() async throws { try await conformance(Conformance.pruneRemovesExactlyOlderRecords) }
    @Test func userMigrationsApplyOnce() async throws { try await conformance(Conformance.userMigrationsApplyOnce) }
    @Test func concurrentOpensAllSucceed() async throws { try await conformance(Conformance.concurrentOpensAllSucceed) }
    @Test func sqlValuesRoundTrip() async throws { try await conformance(Conformance.sqlValuesRoundTrip) }
    @Test func questionMarkInStringLiteralIsText() async throws { try await conformance(Conformance.questionMarkInStringLiteralIsText) }
    @Test func badStatementFailsNonRetriably() async throws { try await conformance(Conformance.badStatementFailsNonRetriably) }

    // MARK: PostgreSQL only

    @Test("Four processes opening a fresh database at once all come up, and each migration is recorded once")
    func processesMigrateAtOnce() async throws {
        try await PostgresTestDatabase.with { database in
            let processes = try (0..<4).map { _ in try MigratingProcess.start(database: database.url) }
            for process in processes { process.waitUntilExit() }
            #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "every process opened the store")
            let store = try await database.open([])
            let rows = try await store.withTransaction { transaction in
                try await transaction.query("SELECT id, count(*) AS n FROM sluice_migrations GROUP BY id ORDER BY id")
            }
            let ids = rows.map { $0["id"]?.string ?? "" }
            #expect(ids.contains("balances-1"))
            #expect(rows.allSatisfy { $0["n"]?.int == 1 })
        }
    }

    @Test func concurrentOpensRecordEachMigrationOnce() async throws {
        try await PostgresTestDatabase.with { database in
            let stores = try await withThrowingTaskGroup(of: PostgresDedupeStore.self) { group in
                for _ in 0..<4 { group.addTask { try await database.open(Conformance.migrations) } }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            let rows = try await stores[0].withTransaction { transaction in
                try await transaction.query("SELECT id, count(*) AS n FROM sluice_migrations GROUP BY id ORDER BY id")
            }
            #expect(rows.map { $0["id"]?.string } == ["conformance-1-ledger", "conformance-2-values", "sluice-1-processed-events-and-offsets", "sluice-2-parking"])
            #expect(rows.allSatisfy { $0["n"] == 1 })
        }
    }

    @Test func failedMigrationNamesItselfAndRecordsNothing() async throws {
        try await PostgresTestDatabase.with { database in
            let broken = StoreMigration(id: "broken-2", sql: "CREATE TABLE fine (x INT); CREATE TABLE broken (x NOT_A_TYPE)")
            let error = await #expect(throws: SluiceError.self) {
                _ = try await database.open([StoreMigration(id: "good-1", sql: "CREATE TABLE good (x INT)"), broken])
            }
            #expect(error?.code == .storeMigrationFailed)
            #expect(error?.message.contains("broken-2") == true)
            #expect(error?.message.contains("42704") == true)

            // The whole start-up ran in one transaction: nothing of it stayed.
            let store = try await database.open([])
            let tables = try await store.withTransaction { transaction in
                try await transaction.query(
                    "SELECT table_name FROM information_schema.tables WHERE table_name IN ('good', 'fine', 'broken')")
            }
            #expect(tables.isEmpty)
        }
    }

    @Test func serverErrorsCarryMessageAndSQLState() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await database.open(Conformance.migrations)
            let syntax = await #expect(throws: SluiceError.self) {
                try await store.withTransaction { transaction in try await transaction.execute("SELEC 1") }
            }
            #expect(syntax?.code == .storeStatementFailed)
            #expect(syntax?.message.contains("SQLSTATE 42601") == true)
            #expect(syntax?.message.contains("syntax error") == true)

            try await store.withTransaction { transaction in
                try await transaction.execute("CREATE UNIQUE INDEX ledger_unique ON conformance_ledger (event_id)")
                try await Conformance.insertLedger(transaction, eventID: "dup", writer: "a")
            }
            let duplicate = await #expect(throws: SluiceError.self) {
                try await store.withTransaction { transaction in
                    try await Conformance.insertLedger(transaction, eventID: "dup", writer: "b")
                }
            }
            #expect(duplicate?.code == .storeConflict)
            #expect(duplicate?.isRetriable == true)
            #expect(duplicate?.message.contains("23505") == true)
        }
    }

    @Test func caughtStatementFailureAbortsTheCommit() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await database.open(Conformance.migrations)
            let error = await #expect(throws: SluiceError.self) {
                try await store.withTransaction { transaction in
                    try await Conformance.insertLedger(transaction, eventID: "swallowed", writer: "a")
                    _ = try? await transaction.execute("SELEC 1")
                }
            }
            #expect(error?.code == .storeStatementFailed)
            #expect(try await Conformance.ledgerWriters(store, eventID: "swallowed") == [])

            // A savepoint is how a body recovers from a failed statement and goes on.
            try await store.withTransaction { transaction in
                try await Conformance.insertLedger(transaction, eventID: "recovered", writer: "a")
                _ = try? await transaction.withSavepoint { try await transaction.execute("SELEC 1") }
                try await Conformance.insertLedger(transaction, eventID: "recovered", writer: "b")
            }
            #expect(try await Conformance.ledgerWriters(store, eventID: "recovered") == ["a", "b"])
        }
    }

    @Test func nativeConnectionIsInsideTheTransaction() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await database.open(Conformance.migrations)
            await #expect(throws: Conformance.HandlerFailure.self) {
                try await store.withTransaction { transaction in
                    #expect(transaction.dialect == .postgresql)
                    try await transaction.connection.query(
                        "INSERT INTO conformance_ledger (event_id, writer, cents) VALUES (\("native"), \("nio"), \(Int64(5)))",
                        logger: PostgresTestDatabase.logger)
                    let seen = try await transaction.query("SELECT writer FROM conformance_ledger WHERE event_id = 'native'")
                    #expect(seen.map { $0["writer"] } == ["nio"])
                    throw Conformance.HandlerFailure()
                }
            }
            #expect(try await Conformance.ledgerWriters(store, eventID: "native") == [])
        }
    }

    @Test func postgresTypesReadAsSQLValues() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await database.open([])
            let rows = try await store.withTransaction { transaction in
                try await transaction.query(
                    """
                    SELECT 7::int2 AS a, 8::int4 AS b, 2.5::float4 AS c, 12.25::numeric AS d, true AS e, false AS f,
                           'x'::varchar AS g, '\\x00ff'::bytea AS h, TIMESTAMPTZ '2024-05-06T07:08:09.123Z' AS i,
                           NULL::text AS j, ?::timestamptz AS k
                    """, ["2024-01-02T03:04:05Z"])
            }
            #expect(rows.count == 1)
            let row = try #require(rows.first)
            #expect(row["a"] == 7)
            #expect(row["b"] == 8)
            #expect(row["c"] == 2.5)
            #expect(row["d"] == 12.25)
            #expect(row["e"] == 1)
            #expect(row["f"] == 0)
            #expect(row["g"] == "x")
            #expect(row["h"] == .blob([0, 255]))
            #expect(row["i"] == "2024-05-06T07:08:09.123Z")
            #expect(row["j"] == .null)
            #expect(row["k"] == "2024-01-02T03:04:05.000Z")
        }
    }

    @Test func placeholderCountMustMatchArguments() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await database.open([])
            let error = await #expect(throws: SluiceError.self) {
                try await store.withTransaction { transaction in try await transaction.query("SELECT ?, ?", [1]) }
            }
            #expect(error?.code == .storeStatementFailed)
        }
    }
}

/// Opening a store: what is checked before the store is usable.
@Suite struct PostgresStoreLocationTests {
    @Test func unreachableServerIsUnavailableAtOnce() async throws {
        let error = await #expect(throws: SluiceError.self) {
            _ = try await PostgresDedupeStore.open(url: "postgres://sluice:s3cret@127.0.0.1:1/orders", logger: PostgresTestDatabase.logger)
        }
        #expect(error?.code == .storeUnavailable)
        #expect(error?.isRetriable == true)
        #expect(error?.message.contains("s3cret") == false, "\(error?.message ?? "")")
    }

    @Test(arguments: [
        "mysql://admin:s3cret@db/orders",
        "postgres://admin:s3cret@:5432/orders",
        "postgres://:s3cret@db/orders",
        "postgres://admin:s3cret@db:99999/orders",
        "postgres://admin:s3cret@db/orders?sslmode=sometimes",
        "postgres://admin:s3cret@db/orders?pool=3",
        "postgres://admin:s3cret@db/orders/extra",
    ])
    func invalidURLsFailWithoutShowingThePassword(url: String) async throws {
        let error = await #expect(throws: SluiceError.self) {
            _ = try await PostgresDedupeStore.open(url: url, logger: PostgresTestDatabase.logger)
        }
        #expect(error?.code == .storeLocationInvalid)
        #expect(error?.message.contains("s3cret") == false, "\(error?.message ?? "")")
        #expect(error?.description.contains("s3cret") == false)
    }

    @Test func urlPartsAreParsed() throws {
        let location = try PostgresStoreLocation(url: "postgresql://app%40corp:p%3Ass@db.internal:6543/orders?sslmode=require")
        #expect(location.host == "db.internal")
        #expect(location.port == 6543)
        #expect(location.username == "app@corp")
        #expect(location.password == "p:ss")
        #expect(location.database == "orders")
        #expect(location.tlsMode == .require)
        #expect(!location.description.contains("p:ss"))

        let defaults = try PostgresStoreLocation(url: "postgres://sluice@localhost")
        #expect(defaults.port == 5432)
        #expect(defaults.database == "sluice")
        #expect(defaults.password == nil)
        #expect(defaults.tlsMode == .prefer)
    }

    @Test func redactionMasksOnlyThePassword() {
        #expect(PostgresStoreLocation.redacted("postgres://u:pw@h:1/d?sslmode=disable") == "postgres://u:***@h:1/d?sslmode=disable")
        #expect(PostgresStoreLocation.redacted("postgres://u@h/d") == "postgres://u@h/d")
    }
}

/// How SQL text is rewritten for PostgreSQL.
@Suite struct PostgresSQLTextTests {
    @Test func placeholdersAreNumberedOutsideLiteralsAndComments() {
        let (sql, count) = PostgresSQLText.numberingPlaceholders(
            in: "SELECT '?', 'it''s ?', \"odd?col\", ?, E'\\'?', $$ ? $$, $tag$ ?; $tag$ -- ? here\n, ? /* ? /* ? */ ? */ FROM t WHERE a = ?")
        #expect(
            sql == "SELECT '?', 'it''s ?', \"odd?col\", $1, E'\\'?', $$ ? $$, $tag$ ?; $tag$ -- ? here\n, $2 /* ? /* ? */ ? */ FROM t WHERE a = $3")
        #expect(count == 3)
    }

    @Test func positionalParametersAreNotDollarQuotes() {
        #expect(PostgresSQLText.numberingPlaceholders(in: "SELECT $1, ?").sql == "SELECT $1, $1")
    }

    @Test func scriptsSplitOnSemicolonsOutsideLiterals() {
        let statements = PostgresSQLText.statements(
            in: """
                CREATE TABLE a (x TEXT DEFAULT ';');
                -- a comment; with a semicolon
                CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql;
                ;
                INSERT INTO a VALUES ('x;y')
                """)
        #expect(statements.count == 3)
        #expect(statements[0] == "CREATE TABLE a (x TEXT DEFAULT ';')")
        #expect(statements[1].hasSuffix("CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql"))
        #expect(statements[2] == "INSERT INTO a VALUES ('x;y')")
    }
}
