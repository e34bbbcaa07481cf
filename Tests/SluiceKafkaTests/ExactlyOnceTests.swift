import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceSQLite
import SluiceKafka
import Testing

/// Exactly-once effects through the store, proven against processes that are rebalanced, killed
/// at random moments, and crashed between the database commit and the Kafka commit.
///
/// The service (`sluice-test-balance-consumer`) adds each event's amount to its account's balance
/// in the handler's transaction. Whatever happens, every balance must equal the sum over the
/// distinct events of its account: an event applied twice or lost shows as a wrong balance.
@Suite("Exactly-once effects: rebalances, SIGKILLs, crashes between the commits", .serialized)
struct ExactlyOnceTests {
    typealias Support = KafkaTestSupport

    static let schema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["account","amount"],
         "properties":{"account":{"type":"string"},"amount":{"type":"integer"}}}
        """#

    /// A database and a scratch directory (schemas, logs, ledger) for one test.
    struct Fixture {
        let directory: URL
        let database: String
        let ledger: URL

        /// - Parameter postgresServer: The server to create the PostgreSQL database on, when not
        ///   the test command's.
        init(database: DatabaseKind, postgresServer: String? = nil) async throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-exactly-once-\(UUID().uuidString)")
            let schemas = directory.appendingPathComponent("EventSchemas/ledger.amount_posted")
            try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
            try ExactlyOnceTests.schema.write(to: schemas.appendingPathComponent("v1.schema.json"), atomically: true, encoding: .utf8)
            ledger = directory.appendingPathComponent("ledger.txt")
            _ = FileManager.default.createFile(atPath: ledger.path, contents: nil)
            switch database {
            case .sqlite: self.database = directory.appendingPathComponent("store.sqlite").path
            case .postgres: self.database = try await TestPostgres.freshDatabaseURL(server: postgresServer)
            }
        }

        func start(
            _ cluster: EmbeddedKafkaCluster, topic: String, group: String, name: String,
            environment extra: [String: String] = [:], logLevel: String = "error", shutdownTimeout: Int = 10,
            arguments more: [String] = []
        ) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sluice-test-balance-consumer")
            process.arguments = [
                "run", "--bootstrap-servers", cluster.bootstrapServers, "--topic", topic, "--group", group,
                "--database", database, "--schemas", directory.appendingPathComponent("EventSchemas").path,
                "--shutdown-timeout", "\(shutdownTimeout)", "--log-level", logLevel,
                "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300",
            ] + more
            var environment = ProcessInfo.processInfo.environment
            environment["SLUICE_TEST_LEDGER"] = ledger.path
            environment.merge(extra) { _, new in new }
            process.environment = environment
            let log = directory.appendingPathComponent("\(name).log")
            _ = FileManager.default.createFile(atPath: log.path, contents: nil)
            process.standardError = try FileHandle(forWritingTo: log)
            try process.run()
            return process
        }

        func log(_ name: String) throws -> String {
            try String(contentsOf: directory.appendingPathComponent("\(name).log"), encoding: .utf8)
        }

        func store() async throws -> SQLDedupeStore {
            try await SQLDedupeStore.open(
                DatabaseLocation(parsing: database), logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        }

        /// Events recorded as processed, and every balance.
        func state(_ store: SQLDedupeStore) async throws -> (processed: Int, balances: [String: Int]) {
            if case .sqlite(let sqlite) = store {
                // A WAL reader: it never waits for the consumer's writer, so polling cannot starve
                // behind back-to-back commits (a write transaction here waited seconds for its turn).
                let processed = try await sqlite.read("SELECT count(*) AS n FROM sluice_processed_events")[0]["n"]?.int ?? -1
                let exists = try await sqlite.read("SELECT count(*) AS n FROM sqlite_master WHERE name = 'balances'")[0]["n"]?.int ?? 0
                guard exists > 0 else { return (processed, [:]) }
                var balances: [String: Int] = [:]
                for row in try await sqlite.read("SELECT account, amount FROM balances") {
                    balances[row["account"]?.string ?? "?"] = row["amount"]?.int
                }
                return (processed, balances)
            }
            return try await store.withTransaction { transaction in
                let processed = try await transaction.query("SELECT count(*) AS n FROM sluice_processed_events")[0]["n"]?.int ?? -1
                let exists = try await transaction.query(
                    transaction.dialect == .sqlite
                        ? "SELECT count(*) AS n FROM sqlite_master WHERE name = 'balances'"
                        : "SELECT count(*) AS n FROM information_schema.tables WHERE table_name = 'balances'")[0]["n"]?.int ?? 0
                guard exists > 0 else { return (processed, [:]) }
                var balances: [String: Int] = [:]
                for row in try await transaction.query("SELECT account, amount FROM balances") {
                    balances[row["account"]?.string ?? "?"] = row["amount"]?.int
                }
                return (processed, balances)
            }
        }
    }

    enum DatabaseKind: String, CustomStringConvertible {
        case sqlite, postgres
        var description: String { rawValue }
    }

    /// `count` distinct events (every 50th produced twice: a duplicate the store must skip), over
    /// `partitions`, each account's events in one partition (as keying by account would put
    /// them); returns the balances they must add up to.
    static func produce(
        _ cluster: EmbeddedKafkaCluster, topic: String, count: Int, partitions: Int, from first: Int = 0
    ) async throws -> [String: Int] {
        let producer = try Support.producer(cluster)
        var expected: [String: Int] = [:]
        var chunk: [ProducerRecord] = []
        for index in first..<(first + count) {
            let accountNumber = index % 64
            let account = "acct-\(accountNumber)"
            let amount = (index * 7_919) % 1_000 - 300
            expected[account, default: 0] += amount
            let value = Array(#"{"event_id":"e\#(index)","event_type":"ledger.amount_posted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c\#(index)","causation_id":"cause-\#(index)","subject":"account:\#(account)","data":{"account":"\#(account)","amount":\#(amount)}}"#.utf8)
            let record = ProducerRecord(topic: topic, partition: Int32(accountNumber % partitions), key: Support.bytes(account), value: value)
            chunk.append(record)
            if index % 50 == 0 { chunk.append(record) }
            if chunk.count >= 20_000 {
                try await Support.produceAll(producer, chunk)
                chunk.removeAll(keepingCapacity: true)
            }
        }
        try await Support.produceAll(producer, chunk)
        try await producer.close()
        return expected
    }

    static func waitUntilProcessed(_ fixture: Fixture, _ store: SQLDedupeStore, count: Int, timeout: Duration) async throws {
        try await Support.eventually("\(count) events processed", timeout: timeout) {
            try await fixture.state(store).processed >= count
        }
    }

    static func stop(_ process: Process) {
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
    }

    @Test("A rebalance (a second member joins, the first leaves) redelivers records; every balance is exact", arguments: DatabaseKind.enabled)
    func rebalance(database: DatabaseKind) async throws {
        let total = 30_000
        let cluster = try Support.cluster(topics: ["rebalanced": 8])
        let expected = try await Self.produce(cluster, topic: "rebalanced", count: total, partitions: 8)
        let fixture = try await Fixture(database: database)
        let store = try await fixture.store()
        let first = try fixture.start(cluster, topic: "rebalanced", group: "balances", name: "first")
        defer { Self.stop(first) }
        try await Self.waitUntilProcessed(fixture, store, count: 3_000, timeout: .seconds(60))
        let second = try fixture.start(cluster, topic: "rebalanced", group: "balances", name: "second")
        defer { Self.stop(second) }
        try await Self.waitUntilProcessed(fixture, store, count: 15_000, timeout: .seconds(90))
        first.terminate()
        first.waitUntilExit()
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(120))
        let state = try await fixture.state(store)
        #expect(state.processed == total)
        #expect(state.balances == expected)
    }

    @Test("20 SIGKILLs at random moments during 200,000 events: every balance is exact", arguments: DatabaseKind.enabled)
    func sigkills(database: DatabaseKind) async throws {
        let total = 200_000
        // Wide, because the embedded broker keeps only about 5 MB per partition.
        let cluster = try Support.cluster(topics: ["killed-balances": 32])
        let expected = try await Self.produce(cluster, topic: "killed-balances", count: total, partitions: 32)
        let fixture = try await Fixture(database: database)
        let store = try await fixture.store()
        var generator = SystemRandomNumberGenerator()
        var kills = 0
        var processedAtKills: [Int] = []
        while kills < 20 {
            let before = try await fixture.state(store).processed
            let process = try fixture.start(cluster, topic: "killed-balances", group: "balances", name: "run-\(kills)")
            // Kill at a random point of this kill's twentieth of the stream's first 60%, once the
            // process has made progress: all 20 kills fall while events are being processed,
            // however fast the consumer is (a clock-based schedule let a faster consumer finish
            // first). The margin covers how far processing runs on between the target being
            // reached and the store's count showing it (groups commit a thousand at a time).
            let span = total * 6 / 10
            let slice = (span * kills / 20)..<(span * (kills + 1) / 20)
            let target = max(before + 1, Int.random(in: slice, using: &generator))
            try await Support.eventually("event \(target) processed before kill \(kills + 1)", timeout: .seconds(90)) {
                try await fixture.state(store).processed >= target
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
            kills += 1
            processedAtKills.append(try await fixture.state(store).processed)
        }
        let last = try fixture.start(cluster, topic: "killed-balances", group: "balances", name: "last")
        defer { Self.stop(last) }
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(900))
        let state = try await fixture.state(store)
        print("\(database): processed at each of 20 SIGKILLs: \(processedAtKills)")
        #expect(processedAtKills.last ?? total < total, "the kills happened while events were still being processed")
        #expect(state.processed == total)
        #expect(state.balances == expected)
    }

    @Test("A crash right after the database commit, before the Kafka commit: the restart resumes from the store's offsets, nothing repeats", arguments: DatabaseKind.enabled)
    func crashBetweenCommits(database: DatabaseKind) async throws {
        let total = 5_000
        let cluster = try Support.cluster(topics: ["crashed": 1])
        let expected = try await Self.produce(cluster, topic: "crashed", count: total, partitions: 1)
        let fixture = try await Fixture(database: database)
        let store = try await fixture.store()
        let crashing = try fixture.start(
            cluster, topic: "crashed", group: "balances", name: "crashing",
            environment: ["SLUICE_TEST_CRASH_AFTER_COMMITS": "5"])
        crashing.waitUntilExit()
        #expect(crashing.terminationReason == .uncaughtSignal)
        #expect(try fixture.log("crashing").contains("crashing after store commit 5"))

        // The window the crash opened: the store is ahead of Kafka.
        let partition = TopicPartition(topic: "crashed", partition: 0)
        let stored = try #require(try await store.storedOffsets(group: "balances", partitions: [partition])[partition])
        let probe = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "balances"), logger: Support.logger)
        let committed = try await probe.committedOffsets(for: [partition])[partition]
        try await probe.close()
        #expect(stored.rawValue > (committed?.rawValue ?? 0), "Kafka's committed offset \(String(describing: committed)) is behind the store's \(stored)")
        let handledBeforeCrash = try String(contentsOf: fixture.ledger, encoding: .utf8).split(separator: "\n").count
        #expect(handledBeforeCrash > 0)

        let restarted = try fixture.start(cluster, topic: "crashed", group: "balances", name: "restarted", logLevel: "info")
        defer { Self.stop(restarted) }
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(90))
        let state = try await fixture.state(store)
        #expect(state.processed == total)
        #expect(state.balances == expected)
        #expect(try fixture.log("restarted").contains("resuming from the store's offsets"))
        // One partition, killed right after a commit: no handler call was rolled back, so the
        // ledger holds each event exactly once, and no handler ran again after the restart.
        let ledger = try String(contentsOf: fixture.ledger, encoding: .utf8).split(separator: "\n")
        #expect(ledger.count == total)
        #expect(Set(ledger).count == total)
    }
}

extension ExactlyOnceTests {
    @Test("A fleet: 3 consumer processes in one group on one PostgreSQL, members SIGKILLed and restarted during the run: nothing lost, nothing applied twice",
          .enabled(if: TestPostgres.isConfigured, "needs the test command's PostgreSQL"))
    func fleet() async throws {
        let total = 60_000
        let cluster = try Support.cluster(topics: ["fleet": 12])
        let expected = try await Self.produce(cluster, topic: "fleet", count: total, partitions: 12)
        let fixture = try await Fixture(database: .postgres)
        let store = try await fixture.store()
        defer { Task { await store.close() } }
        var members = try (0..<3).map { try fixture.start(cluster, topic: "fleet", group: "fleet", name: "member-\($0)-0") }
        var generator = SystemRandomNumberGenerator()
        var processedAtKills: [Int] = []
        for kill in 1...6 {
            let before = try await fixture.state(store).processed
            try await Support.eventually("fleet progress before kill \(kill)", timeout: .seconds(90)) {
                try await fixture.state(store).processed > before
            }
            try await Task.sleep(for: .milliseconds(Int.random(in: 500...2_500, using: &generator)))
            let victim = Int.random(in: 0..<members.count, using: &generator)
            sigkill(members[victim].processIdentifier)
            members[victim].waitUntilExit()
            processedAtKills.append(try await fixture.state(store).processed)
            members[victim] = try fixture.start(cluster, topic: "fleet", group: "fleet", name: "member-\(victim)-\(kill)")
        }
        defer { for member in members { Self.stop(member) } }
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(300))
        let state = try await fixture.state(store)
        print("fleet: processed at each of 6 SIGKILLs: \(processedAtKills)")
        #expect(processedAtKills.last ?? total < total, "the kills happened while events were still being processed")
        #expect(state.processed == total)
        #expect(state.balances == expected)
    }
}

/// SIGKILL, named so it does not shadow the test's `kill` counters.
private func sigkill(_ pid: Int32) { kill(pid, SIGKILL) }

extension ExactlyOnceTests.DatabaseKind {
    /// SQLite always; PostgreSQL when the test command started a server.
    static var enabled: [Self] { TestPostgres.isConfigured ? [.sqlite, .postgres] : [.sqlite] }
}
