import Foundation
import Logging
import PostgresNIO
import Sluice
import Synchronization
import SluiceTestServiceSupport
import Testing

@testable import SluicePostgres


/// Log lines kept for inspection.
final class CapturedLog: Sendable {
    private let lines = Mutex<[String]>([])

    var all: [String] { lines.withLock { $0 } }

    func logger(label: String = "sluice.tests.outage") -> Logger {
        Logger(label: label) { _ in Handler(log: self) }
    }

    struct Handler: LogHandler {
        let log: CapturedLog
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace
        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }
        // swift-format-ignore
        func log(event: LogEvent) {
            log.lines.withLock { $0.append("\(event.level) \(event.message)") }
        }
    }
}

/// What happens to the store's calls while its server is down and after it is back: each call
/// succeeds or throws `STORE_UNAVAILABLE` within a bounded time, and the store works again once
/// the server returns, without being reopened.
@Suite("PostgreSQL outages: calls fail promptly, the store recovers", .serialized,
       .enabled(if: !PostgresTestDatabase.isSkipped, "SLUICE_SKIP_POSTGRES=1"))
struct PostgresOutageTests {
    static let migrations = [StoreMigration(id: "outage-1", sql: "CREATE TABLE outage_writes (worker INT NOT NULL, n INT NOT NULL)")]

    /// One call's outcome.
    struct Call: Sendable {
        var worker: Int
        var started: ContinuousClock.Instant
        var duration: Duration
        var error: SluiceError?
        var otherError: String?
    }

    final class StopFlag: Sendable {
        private let value = Atomic<Bool>(false)
        var isSet: Bool { value.load(ordering: .relaxed) }
        func set() { value.store(true, ordering: .relaxed) }
    }

    final class Calls: Sendable {
        private let calls = Mutex<[Call]>([])
        func append(_ call: Call) { calls.withLock { $0.append(call) } }
        var all: [Call] { calls.withLock { $0 } }
    }

    /// `workers` tasks each running transactions (and now and then reading offsets) back to back
    /// until `stop` is set; a failed call is followed by a short pause, as a lane's backoff.
    static func load(_ store: PostgresDedupeStore, workers: Int, calls: Calls, stop: StopFlag) async {
        await withDiscardingTaskGroup { group in
            for worker in 0..<workers {
                group.addTask {
                    var n = 0
                    while !stop.isSet {
                        n += 1
                        let started = ContinuousClock.now
                        var call = Call(worker: worker, started: started, duration: .zero)
                        do {
                            if n % 5 == 0 {
                                _ = try await store.storedOffsets(group: "g", partitions: [TopicPartition(topic: "t", partition: Int32(worker))])
                            } else {
                                try await store.withTransaction { transaction in
                                    try await transaction.execute("INSERT INTO outage_writes (worker, n) VALUES (?, ?)", [.integer(Int64(worker)), .integer(Int64(n))])
                                    try await transaction.storeNextOffset(Offset(Int64(n)), for: TopicPartition(topic: "t", partition: Int32(worker)), group: "g")
                                }
                            }
                        } catch let error as SluiceError {
                            call.error = error
                        } catch {
                            call.otherError = "\(type(of: error)): \(error)"
                        }
                        call.duration = started.duration(to: .now)
                        calls.append(call)
                        if call.error != nil || call.otherError != nil { try? await Task.sleep(for: .milliseconds(200)) }
                    }
                }
            }
        }
    }

    /// Runs the load, crashes the server for `outage`, resumes it, and checks the calls.
    func outage(_ outage: Duration, bound: Duration, recovery: Duration) async throws {
        let server = try OutagePostgresServer.start()
        defer { server.stop() }
        let log = CapturedLog()
        let store = try await PostgresDedupeStore.open(url: server.url + "?sslmode=disable", migrations: Self.migrations, poolSize: 4, logger: log.logger())
        let calls = Calls()
        let stop = StopFlag()
        let workers = 6
        let load = Task { await Self.load(store, workers: workers, calls: calls, stop: stop) }
        try await Task.sleep(for: .seconds(1))
        try server.crash()
        let crashed = ContinuousClock.now
        try await Task.sleep(for: outage)
        try server.resume()
        let resumed = ContinuousClock.now

        // Every worker gets a call through, without the store being reopened.
        let deadline = resumed + recovery
        var recovered = false
        while ContinuousClock.now < deadline {
            let succeeded = Set(calls.all.filter { $0.started > resumed && $0.error == nil && $0.otherError == nil }.map(\.worker))
            if succeeded.count == workers { recovered = true; break }
            try await Task.sleep(for: .milliseconds(200))
        }
        stop.set()
        // The load ends once each worker's call in flight ends: it must, within the bound.
        let stopping = ContinuousClock.now
        await load.value
        let all = calls.all
        let failures = all.filter { $0.error != nil || $0.otherError != nil }
        let longest = all.map(\.duration).max() ?? .zero
        let firstRecovered = all.filter { $0.started > resumed && $0.error == nil && $0.otherError == nil }.map(\.started).min()
        print("""
            outage \(outage): \(all.count) calls, \(failures.count) failed, longest \(longest), \
            first success \(firstRecovered.map { resumed.duration(to: $0 + .zero) }.map { "\($0)" } ?? "none") after the server returned, \
            load stopped in \(stopping.duration(to: .now)); first failure \(failures.first.map { "\(crashed.duration(to: $0.started)) after the crash: \($0.error?.message ?? $0.otherError ?? "")" } ?? "none")
            """)
        #expect(recovered, "every worker had a call succeed within \(recovery) of the server's return")
        #expect(!failures.isEmpty, "the outage was seen")
        #expect(failures.allSatisfy { $0.error?.code == .storeUnavailable && $0.error?.isRetriable == true },
                "every failure is a retriable STORE_UNAVAILABLE: \(Set(failures.map { $0.error.map { "\($0.code): \($0.message)" } ?? $0.otherError ?? "" }).sorted())")
        #expect(longest < bound, "no call took longer than \(bound)")
        #expect(!log.all.contains { $0.contains("hasn't been called yet") })

        // Nothing half-written: each committed transaction wrote its row and its offset together.
        try await store.withTransaction { transaction in
            for worker in 0..<workers {
                let rows = try await transaction.query("SELECT max(n) AS n FROM outage_writes WHERE worker = ?", [.integer(Int64(worker))])
                let offset = try await store.storedOffsets(group: "g", partitions: [TopicPartition(topic: "t", partition: Int32(worker))])
                #expect(rows.first?["n"]?.int == offset.first.map { Int($0.value.rawValue) })
            }
        }
        await store.close()
    }

    @Test("A 20-second outage: calls fail with STORE_UNAVAILABLE within the bound, the store recovers without reopening")
    func twentySecondOutage() async throws {
        try await outage(.seconds(20), bound: .seconds(15), recovery: .seconds(30))
    }

    /// The service-level 2-minute outage (`PostgresOutageProcessTests.twoMinutes`) runs in every
    /// full run; this store-level one repeats it call by call and runs with
    /// `SLUICE_LONG_OUTAGES=1`, to keep the full run's time down.
    @Test("A 2-minute outage: calls keep failing promptly, the store recovers without reopening",
          .enabled(if: ProcessInfo.processInfo.environment["SLUICE_LONG_OUTAGES"] == "1", "SLUICE_LONG_OUTAGES=1"))
    func twoMinuteOutage() async throws {
        try await outage(.seconds(120), bound: .seconds(15), recovery: .seconds(30))
    }

    @Test("Opening the store leases only once its pool runs: no start-up warning, 20 times over")
    func openWaitsForThePool() async throws {
        let log = CapturedLog()
        let server = try PostgresStoreLocation(url: try PostgresTestDatabase.serverURL())
        let url = "postgres://\(server.username)@\(server.host):\(server.port)/\(server.database)?sslmode=disable"
        for _ in 0..<20 {
            let store = try await PostgresDedupeStore.open(url: url, logger: log.logger())
            await store.close()
        }
        #expect(!log.all.contains { $0.contains("hasn't been called yet") }, "\(log.all.filter { $0.contains("PostgresClient") })")
    }

    @Test("The pool's run loop is entered before the first lease: no start-up warning, 20 times over (a plain Task warned 19 times in 20)")
    func poolRunsBeforeTheFirstLease() async throws {
        let server = try PostgresStoreLocation(url: try PostgresTestDatabase.serverURL())
        let log = CapturedLog()
        for _ in 0..<20 {
            let configuration = PostgresClient.Configuration(
                host: server.host, port: server.port, username: server.username, password: server.password,
                database: server.database, tls: .disable)
            let client = PostgresClient(configuration: configuration, backgroundLogger: log.logger())
            let running = await PostgresDedupeStore.startRunning(client)
            try await client.withConnection { connection in
                _ = try await connection.query("SELECT 1", logger: PostgresTestDatabase.logger).get()
            }
            running.cancel()
            await running.value
        }
        #expect(!log.all.contains { $0.contains("hasn't been called yet") }, "\(log.all.filter { $0.contains("PostgresClient") })")
    }

    @Test("Closing the store during an outage returns promptly, even with calls waiting")
    func closeDuringOutage() async throws {
        let server = try OutagePostgresServer.start()
        defer { server.stop() }
        let store = try await PostgresDedupeStore.open(url: server.url + "?sslmode=disable", migrations: Self.migrations, poolSize: 2, logger: CapturedLog().logger())
        try server.crash()
        let calls = Calls()
        let stop = StopFlag()
        let load = Task { await Self.load(store, workers: 4, calls: calls, stop: stop) }
        try await Task.sleep(for: .seconds(3))
        let closing = ContinuousClock.now
        await store.close()
        let closed = closing.duration(to: .now)
        stop.set()
        await load.value
        #expect(closed < .seconds(5), "close took \(closed)")
        let afterClose = await #expect(throws: SluiceError.self) { try await store.withTransaction { _ in } }
        #expect(afterClose?.code == .storeUnavailable)
        #expect(afterClose?.message.contains("the store is closed") == true, "\(afterClose?.message ?? "")")
        #expect(calls.all.allSatisfy { $0.error?.code == .storeUnavailable }, "\(calls.all.compactMap { $0.error?.message ?? $0.otherError })")
    }
}
