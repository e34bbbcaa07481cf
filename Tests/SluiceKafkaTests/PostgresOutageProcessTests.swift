import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceKafka
import SluiceTestServiceSupport
import Testing

/// A service process (`sluice-test-balance-consumer`) whose PostgreSQL server crashes
/// (`pg_ctl stop -m immediate`) and comes back on the same port: the process rides the outage out
/// without a restart, a SIGTERM during it ends the process within its shutdown timeout, and a
/// process started during it exits with an error; afterwards every balance is exact (no event
/// lost, none applied twice).
@Suite("A PostgreSQL outage under a running service", .serialized,
       .enabled(if: TestPostgres.isConfigured, "needs PostgreSQL (scripts/test.sh starts it)"))
struct PostgresOutageProcessTests {
    typealias Support = KafkaTestSupport
    typealias Fixture = ExactlyOnceTests.Fixture

    /// The fixture's count of processed events, or `nil` while its own store cannot reach the server.
    static func processed(_ fixture: Fixture, _ store: SQLDedupeStore) async -> Int? {
        try? await fixture.state(store).processed
    }

    /// Waits until `count` events are processed, tolerating the polls that fail while the
    /// server is down.
    static func waitUntilProcessed(_ fixture: Fixture, _ store: SQLDedupeStore, count: Int, timeout: Duration) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if let processed = await processed(fixture, store), processed >= count { return }
            try await Task.sleep(for: .milliseconds(200))
        }
        throw Support.TimedOut(what: "\(count) events processed (\(await processed(fixture, store).map(String.init) ?? "?") were)")
    }

    /// Waits for `process` to exit, at most `timeout`; returns how long it took, or `nil`.
    static func waitForExit(_ process: Process, timeout: Duration) async throws -> Duration? {
        let started = ContinuousClock.now
        while process.isRunning {
            if started.duration(to: .now) > timeout { return nil }
            try await Task.sleep(for: .milliseconds(50))
        }
        return started.duration(to: .now)
    }

    func outage(_ outage: Duration, total: Int, topic: String) async throws {
        let server = try OutagePostgresServer.start()
        defer { server.stop() }
        let cluster = try Support.cluster(topics: [topic: 8])
        let expected = try await ExactlyOnceTests.produce(cluster, topic: topic, count: total, partitions: 8)
        let fixture = try await Fixture(database: .postgres, postgresServer: server.url)
        let store = try await fixture.store()
        defer { Task { await store.close() } }
        let process = try fixture.start(cluster, topic: topic, group: "balances", name: "service", logLevel: "warning")
        defer { ExactlyOnceTests.stop(process) }
        try await Self.waitUntilProcessed(fixture, store, count: 3_000, timeout: .seconds(90))
        try server.crash()
        let before = await Self.processed(fixture, store)
        try await Task.sleep(for: outage)
        #expect(process.isRunning, "the service rode the outage out")
        try server.resume()
        let resumed = ContinuousClock.now
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(180))
        print("\(topic): \(before.map(String.init) ?? "?") processed at the crash; all \(total) processed \(resumed.duration(to: .now)) after the server returned")
        #expect(process.isRunning, "the service recovered without a restart")
        let state = try await fixture.state(store)
        #expect(state.processed == total)
        #expect(state.balances == expected)
        let log = try fixture.log("service")
        #expect(log.contains("STORE_UNAVAILABLE"), "the outage was logged")
        // A graceful stop once it is over.
        process.terminate()
        #expect(try await Self.waitForExit(process, timeout: .seconds(20)) != nil)
    }

    @Test("PostgreSQL down for 20 s mid-stream: the service backs off, recovers by itself, every balance exact")
    func twentySeconds() async throws {
        try await outage(.seconds(20), total: 30_000, topic: "outage-20s")
    }

    @Test("PostgreSQL down for 2 minutes mid-stream: the service recovers by itself, every balance exact")
    func twoMinutes() async throws {
        try await outage(.seconds(120), total: 30_000, topic: "outage-2m")
    }

    @Test("SIGTERM while PostgreSQL is down: the service exits within its shutdown timeout; a restart after the server is back finishes exactly")
    func sigtermDuringOutage() async throws {
        let total = 30_000
        let server = try OutagePostgresServer.start()
        defer { server.stop() }
        let cluster = try Support.cluster(topics: ["outage-term": 8])
        let expected = try await ExactlyOnceTests.produce(cluster, topic: "outage-term", count: total, partitions: 8)
        let fixture = try await Fixture(database: .postgres, postgresServer: server.url)
        let store = try await fixture.store()
        defer { Task { await store.close() } }
        let process = try fixture.start(
            cluster, topic: "outage-term", group: "balances", name: "terminated", logLevel: "warning", shutdownTimeout: 10)
        defer { ExactlyOnceTests.stop(process) }
        try await Self.waitUntilProcessed(fixture, store, count: 3_000, timeout: .seconds(90))
        try server.crash()
        try await Task.sleep(for: .seconds(5))
        process.terminate()
        let exit = try await Self.waitForExit(process, timeout: .seconds(20))
        if exit == nil { kill(process.processIdentifier, SIGKILL) }
        print("outage-term: exited \(exit.map { "\($0)" } ?? "never") after SIGTERM")
        let took = try #require(exit, "the service exited after SIGTERM during the outage")
        #expect(took < .seconds(13), "within its 10 s shutdown timeout (plus start-up of the exit)")

        try server.resume()
        let restarted = try fixture.start(cluster, topic: "outage-term", group: "balances", name: "restarted", logLevel: "warning")
        defer { ExactlyOnceTests.stop(restarted) }
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(180))
        let state = try await fixture.state(store)
        #expect(state.processed == total)
        #expect(state.balances == expected)
    }

    @Test("PostgreSQL down while the service starts: it exits non-zero saying so, consuming nothing; started again once the server is back, it finishes exactly")
    func outageAtStartUp() async throws {
        let total = 20_000
        let server = try OutagePostgresServer.start()
        defer { server.stop() }
        let cluster = try Support.cluster(topics: ["outage-start": 8])
        let expected = try await ExactlyOnceTests.produce(cluster, topic: "outage-start", count: total, partitions: 8)
        let fixture = try await Fixture(database: .postgres, postgresServer: server.url)
        try server.crash()
        let starting = try fixture.start(cluster, topic: "outage-start", group: "balances", name: "starting", logLevel: "info")
        defer { ExactlyOnceTests.stop(starting) }
        let exit = try await Self.waitForExit(starting, timeout: .seconds(30))
        #expect(exit != nil, "the service gave up opening its store")
        #expect(starting.terminationStatus != 0)
        let log = try fixture.log("starting")
        #expect(log.contains("STORE_UNAVAILABLE") || log.contains("cannot connect"), "\(log.suffix(600))")

        try server.resume()
        let store = try await fixture.store()
        defer { Task { await store.close() } }
        let started = try fixture.start(cluster, topic: "outage-start", group: "balances", name: "started", logLevel: "warning")
        defer { ExactlyOnceTests.stop(started) }
        try await Self.waitUntilProcessed(fixture, store, count: total, timeout: .seconds(180))
        let state = try await fixture.state(store)
        #expect(state.processed == total)
        #expect(state.balances == expected)
    }
}
