import Foundation
import Logging
import Sluice
import SluiceSQLite
import Testing

/// ``SQLiteDedupeStore`` on a real file: the shared conformance checks, each on a fresh file, then
/// what only SQLite has (several processes on one file).
struct SQLiteDedupeStoreTests {
    typealias Conformance = DedupeStoreConformance

    static let logger = Logger(label: "sluice.tests.sqlite", factory: { _ in SwiftLogNoOpLogHandler() })

    /// A fresh file path in a fresh directory, removed afterwards.
    private func withFile(_ body: (String) async throws -> Void) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-sqlite-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await body(directory.appendingPathComponent("store.sqlite").path)
    }

    private func conformance(_ check: (@escaping Conformance.Open<SQLiteDedupeStore>) async throws -> Void) async throws {
        try await withFile { path in
            try await check { migrations in try await SQLiteDedupeStore.open(path: path, migrations: migrations, logger: Self.logger) }
        }
    }

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
        try await withFile { path in
            let outcomes = try await Conformance.concurrentRecordingCommitsOnce { migrations in
                try await SQLiteDedupeStore.open(path: path, migrations: migrations, logger: Self.logger)
            }
            // One writer at a time: the second transaction waits for the first, then finds the
            // record (count 2) and rolls back, or conflicts; never do both commit.
            #expect(outcomes.filter { $0 == .committed }.count == 1)
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

    @Test("A task a handler starts inside a transaction (it inherits the writer's executor) still runs after the transaction ended")
    func unstructuredTaskOutlivesTransaction() async throws {
        try await withFile { path in
            let store = try await SQLiteDedupeStore.open(path: path, logger: Self.logger)
            let (events, continuation) = AsyncStream.makeStream(of: String.self)
            try await store.withTransaction { transaction in
                try await transaction.execute("SELECT 1")
                Task {
                    try? await Task.sleep(for: .milliseconds(50))
                    continuation.yield("ran after the commit")
                    continuation.finish()
                }
            }
            let outcome = try await withThrowingTaskGroup(of: String?.self) { group in
                group.addTask { await events.first { _ in true } }
                group.addTask {
                    try await Task.sleep(for: .seconds(10))
                    return nil
                }
                defer { group.cancelAll() }
                return try await group.next() ?? nil
            }
            #expect(outcome == "ran after the commit")
            // And the store still works.
            #expect(try await store.withTransaction { try await $0.query("SELECT 2 AS n")[0]["n"]?.int } == 2)
        }
    }

    @Test("A failed migration names itself, and the store does not open")
    func failedMigration() async throws {
        try await withFile { path in
            let error = await #expect(throws: SluiceError.self) {
                _ = try await SQLiteDedupeStore.open(
                    path: path, migrations: [StoreMigration(id: "broken-1", sql: "CREATE TABLEX nope")], logger: Self.logger)
            }
            #expect(error?.code == .storeMigrationFailed)
            #expect(error?.message.contains("broken-1") == true)
        }
    }

    @Test("Two processes opening a fresh file at once both come up, and each migration is recorded once")
    func twoProcessesMigrateAtOnce() async throws {
        try await withFile { path in
            let processes = try (0..<4).map { _ in try MigratingProcess.start(database: path) }
            for process in processes { process.waitUntilExit() }
            #expect(processes.allSatisfy { $0.terminationStatus == 0 }, "every process opened the store")
            let store = try await SQLiteDedupeStore.open(path: path, logger: Self.logger)
            let rows = try await store.read("SELECT id, count(*) AS n FROM sluice_migrations GROUP BY id ORDER BY id")
            #expect(rows.map { $0["id"]?.string ?? "" } == ["balances-1", "sluice-1-processed-events-and-offsets", "sluice-2-parking"])
            #expect(rows.allSatisfy { $0["n"]?.int == 1 })
        }
    }
}

/// `sluice-test-balance-consumer migrate-only`: a process that opens a store (applying the balance
/// service's migrations) and exits.
enum MigratingProcess {
    static func start(database: String) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("sluice-test-balance-consumer")
        process.arguments = ["migrate-only", "--database", database]
        try process.run()
        return process
    }

}

extension SQLiteDedupeStoreTests {
    /// Runs `chattr` (the immutable attribute stops even root from writing, where permissions do
    /// not: the tests run as root in CI); `false` when it is missing or the file system refuses.
    private static func chattr(_ flag: String, _ path: String) -> Bool {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["chattr", flag, path]
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return false }
        process.waitUntilExit()
        return process.terminationStatus == 0
    }

    @Test("A database file that cannot be written at start: STORE_UNAVAILABLE naming the file, nothing half-done; the same file opens once it is writable again")
    func unwritableFileAtStart() async throws {
        try await withFile { path in
            do {
                let store = try await SQLiteDedupeStore.open(path: path, logger: Self.logger)
                _ = try await store.storedOffsets(group: "g", partitions: [])
            }
            // A checkpointed file with no WAL beside it, made immutable.
            for suffix in ["-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
            guard Self.chattr("+i", path) else {
                print("skipped: chattr +i is not available here, so no file can be made unwritable for root")
                return
            }
            defer { _ = Self.chattr("-i", path) }
            let migration = StoreMigration(id: "service-1", sql: "CREATE TABLE service_rows (id TEXT PRIMARY KEY)")
            do {
                _ = try await SQLiteDedupeStore.open(path: path, migrations: [migration], logger: Self.logger)
                Issue.record("an unwritable store opened")
            } catch let error as SluiceError {
                #expect(error.code == .storeUnavailable, "\(error)")
                #expect(error.message.contains(path), "the error names the file: \(error.message)")
            }
            _ = Self.chattr("-i", path)
            let reopened = try await SQLiteDedupeStore.open(path: path, migrations: [migration], logger: Self.logger)
            let rows = try await reopened.read("SELECT count(*) AS n FROM sluice_migrations WHERE id = 'service-1'")
            #expect(rows.first?["n"]?.int == 1, "the migration ran once, when the file was writable")
        }
    }

    @Test("A database in a directory that cannot be created: STORE_UNAVAILABLE naming the path")
    func uncreatableDirectory() async throws {
        let path = "/proc/sluice-no-such-dir/store.sqlite"
        do {
            _ = try await SQLiteDedupeStore.open(path: path, logger: Self.logger)
            Issue.record("a store opened at \(path)")
        } catch let error as SluiceError {
            #expect(error.code == .storeUnavailable)
            #expect(error.message.contains(path))
        }
    }
}
