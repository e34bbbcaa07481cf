// A consumer service for the exactly-once tests: each `ledger.amount_posted` event adds its amount
// to a balance row in the handler's transaction, on SQLite or PostgreSQL (`--database`). The tests
// kill it at random moments and compare every balance with the sum over distinct events.
//
// SLUICE_TEST_CRASH_AFTER_COMMITS=N kills the process (SIGKILL) right after its Nth store commit:
// the database has the effects and the offset, Kafka does not have the commit yet.
// SLUICE_TEST_LEDGER appends each handler call's event id (calls rolled back included).
//
// For the parking tests: `ledger.step_recorded` events append their `seq` to their account's row
// of `steps` (so the row shows the order in which they were applied); SLUICE_TEST_REFUSE=k7#3,…
// makes the handler refuse those steps for good (a bug; the fix is running without it), and
// SLUICE_TEST_CRASH_WHEN_PARKED=N kills the process right after the store commit that brings the
// parked records to N or more.

import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceCLI
import Synchronization
import SluiceTestServiceSupport

struct Posting: Decodable, Sendable {
    var account: String
    var amount: Int
}

struct Step: Decodable, Sendable {
    var account: String
    var seq: Int
}

enum BalanceService: ConsumerServiceDefinition {
    typealias Store = CrashingStore

    static func migrations() -> [StoreMigration] {
        [StoreMigration(id: "balances-1", sql: """
            CREATE TABLE balances (account TEXT PRIMARY KEY, amount BIGINT NOT NULL);
            CREATE TABLE steps (account TEXT PRIMARY KEY, seqs TEXT NOT NULL)
            """)]
    }

    static func router() -> EventRouter<SQLDedupeStore.Transaction> {
        let ledger = ProcessInfo.processInfo.environment["SLUICE_TEST_LEDGER"].map(Ledger.init(path:))
        var router = EventRouter<SQLDedupeStore.Transaction>()
        router.on("ledger.amount_posted", as: Posting.self, handler: "balances") { event, context in
            try await context.transaction.execute(
                """
                INSERT INTO balances (account, amount) VALUES (?, ?)
                ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount
                """,
                [.text(event.payload.account), SQLValue(event.payload.amount)])
            ledger?.append(event.eventID)
        }
        let refused = Set((ProcessInfo.processInfo.environment["SLUICE_TEST_REFUSE"] ?? "").split(separator: ",").map(String.init))
        router.on("ledger.step_recorded", as: Step.self, handler: "steps") { event, context in
            if refused.contains("\(event.payload.account)#\(event.payload.seq)") {
                throw SluiceError(code: "STEP_REFUSED", message: "step \(event.payload.seq) of \(event.payload.account) refused")
            }
            try await context.transaction.execute(
                "INSERT INTO steps (account, seqs) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET seqs = steps.seqs || ',' || excluded.seqs",
                [.text(event.payload.account), .text(String(event.payload.seq))])
        }
        return router
    }

    static func openStore(database: String, logger: Logger) async throws -> CrashingStore {
        let base = try await SQLDedupeStore.open(DatabaseLocation(parsing: database), migrations: migrations(), logger: logger)
        let crashAfter = ProcessInfo.processInfo.environment["SLUICE_TEST_CRASH_AFTER_COMMITS"].flatMap { Int($0) }
        let crashWhenParked = ProcessInfo.processInfo.environment["SLUICE_TEST_CRASH_WHEN_PARKED"].flatMap { Int($0) }
        return CrashingStore(base: base, crashAfterCommits: crashAfter, crashWhenParked: crashWhenParked)
    }
}

/// The SQL store, killing the process right after its Nth commit when asked.
final class CrashingStore: DedupeStore {
    typealias Transaction = SQLDedupeStore.Transaction

    private let base: SQLDedupeStore
    private let crashAfterCommits: Int?
    private let crashWhenParked: Int?
    private let commits = Atomic<Int>(0)

    init(base: SQLDedupeStore, crashAfterCommits: Int?, crashWhenParked: Int? = nil) {
        self.base = base
        self.crashAfterCommits = crashAfterCommits
        self.crashWhenParked = crashWhenParked
    }

    func withTransaction<T: Sendable>(_ body: (Transaction) async throws -> T) async throws -> T {
        let result = try await base.withTransaction(body)
        let count = commits.add(1, ordering: .relaxed).newValue
        if let crashAfterCommits, count >= crashAfterCommits {
            FileHandle.standardError.write(Data("crashing after store commit \(count)\n".utf8))
            kill(getpid(), SIGKILL)
        }
        if let crashWhenParked {
            let parked = try await base.withTransaction { try await $0.query("SELECT count(*) AS n FROM sluice_parked_records") }
            if let count = parked.first?["n"]?.int, count >= crashWhenParked {
                FileHandle.standardError.write(Data("crashing after the store commit that parked record \(count)\n".utf8))
                kill(getpid(), SIGKILL)
            }
        }
        return result
    }

    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        try await base.storedOffsets(group: group, partitions: partitions)
    }

    func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        try await base.pruneProcessedEvents(olderThan: cutoff)
    }
}

/// Opens the store (applying the migrations) and exits: the concurrent-migration test starts
/// several of these at once against a fresh database.
struct MigrateOnlyCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "migrate-only")

    @Option var database: String

    func run() async throws {
        let store = try await SQLDedupeStore.open(
            DatabaseLocation(parsing: database), migrations: BalanceService.migrations(), logger: Logger(label: "migrate-only"))
        await store.close()
    }
}

@main
struct BalanceConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-test-balance-consumer", subcommands: [
            RunCommand<BalanceService>.self, ReplayCommand<BalanceService>.self, ParkedCommand<BalanceService>.self,
            MigrateOnlyCommand.self,
        ])
}
