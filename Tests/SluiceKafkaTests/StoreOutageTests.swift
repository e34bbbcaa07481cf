import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceKafka
import Testing

/// The store going away under a running service: the partitions halt at their next transaction
/// and wait (`STORE_UNAVAILABLE`, a critical line, the halted gauge) instead of spending the
/// handler's retries and dead-lettering healthy events; they go on by themselves when the store
/// answers again, a SIGTERM meanwhile ends the process, and every balance is exact afterwards.
@Suite("Store outages: a SQLite write lock held by another process", .serialized)
struct StoreOutageTests {
    typealias Support = KafkaTestSupport
    typealias Fixture = ExactlyOnceTests.Fixture

    /// Another process that takes SQLite's write lock (`BEGIN IMMEDIATE`) on `path`, creates
    /// `marker` once it holds it, and lets go after `seconds` or as soon as `marker + ".release"`
    /// exists (a file, not a signal: `python3` may be a wrapper whose child a signal misses).
    static func holdWriteLock(_ path: String, seconds: Int, marker: URL) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [
            "python3", "-c",
            """
            import os, sqlite3, sys, time
            connection = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=60)
            connection.execute('BEGIN IMMEDIATE')
            open(sys.argv[3], 'w').close()
            deadline = time.time() + int(sys.argv[2])
            while time.time() < deadline and not os.path.exists(sys.argv[3] + '.release'):
                time.sleep(0.05)
            connection.execute('ROLLBACK')
            """,
            path, String(seconds), marker.path,
        ]
        try process.run()
        return process
    }

    /// Lets the process of ``holdWriteLock(_:seconds:marker:)`` go, and waits until it has.
    static func release(_ lock: Process, marker: URL) {
        _ = FileManager.default.createFile(atPath: marker.path + ".release", contents: nil)
        lock.waitUntilExit()
    }

    /// Balances of two sets of expected balances together.
    static func sum(_ first: [String: Int], _ second: [String: Int]) -> [String: Int] {
        first.merging(second, uniquingKeysWith: +)
    }

    @Test("SQLite's write lock held by another process for 40 s (four times the 10 s busy timeout) while 10,000 of 20,000 events arrive: the service halts, says STORE_UNAVAILABLE, resumes by itself; every balance exact, nothing dead-lettered")
    func sqliteLockedMidStream() async throws {
        let half = 10_000
        let cluster = try Support.cluster(topics: ["locked": 8])
        let fixture = try await Fixture(database: .sqlite)
        let store = try await fixture.store()
        let consumer = try fixture.start(cluster, topic: "locked", group: "balances", name: "locked", logLevel: "notice")
        defer { ExactlyOnceTests.stop(consumer) }
        let before = try await ExactlyOnceTests.produce(cluster, topic: "locked", count: half, partitions: 8)
        try await ExactlyOnceTests.waitUntilProcessed(fixture, store, count: half, timeout: .seconds(90))

        // The lock is taken with the service idle, then the rest of the stream arrives.
        let marker = fixture.directory.appendingPathComponent("locked")
        let lock = try Self.holdWriteLock(fixture.database, seconds: 40, marker: marker)
        defer { Self.release(lock, marker: marker) }
        try await Support.eventually("the lock taken", timeout: .seconds(30)) { FileManager.default.fileExists(atPath: marker.path) }
        let after = try await ExactlyOnceTests.produce(cluster, topic: "locked", count: half, partitions: 8, from: half)
        try await Task.sleep(for: .seconds(25))
        #expect(try await fixture.state(store).processed == half, "nothing commits while another process holds the lock")

        lock.waitUntilExit()
        try await ExactlyOnceTests.waitUntilProcessed(fixture, store, count: 2 * half, timeout: .seconds(120))
        #expect(consumer.isRunning, "the service went on by itself")
        let state = try await fixture.state(store)
        #expect(state.processed == 2 * half)
        #expect(state.balances == Self.sum(before, after))
        let log = try fixture.log("locked")
        #expect(log.contains("store unavailable; partition halted until it answers"))
        #expect(log.contains("STORE_UNAVAILABLE"))
        #expect(log.contains("store answers again; partition continues"))
        #expect(!log.contains("handler failed for good"), "no event was given up on")
    }

    @Test("SIGTERM while another process holds SQLite's write lock: the service exits within its 10 s shutdown timeout; a restart after the lock is gone finishes with every balance exact")
    func sigtermWhileLocked() async throws {
        let half = 10_000
        let cluster = try Support.cluster(topics: ["locked-term": 8])
        let fixture = try await Fixture(database: .sqlite)
        let store = try await fixture.store()
        let first = try fixture.start(cluster, topic: "locked-term", group: "balances", name: "first", logLevel: "notice")
        defer { ExactlyOnceTests.stop(first) }
        let before = try await ExactlyOnceTests.produce(cluster, topic: "locked-term", count: half, partitions: 8)
        try await ExactlyOnceTests.waitUntilProcessed(fixture, store, count: half, timeout: .seconds(90))

        let marker = fixture.directory.appendingPathComponent("locked")
        let lock = try Self.holdWriteLock(fixture.database, seconds: 300, marker: marker)
        defer { Self.release(lock, marker: marker) }
        try await Support.eventually("the lock taken", timeout: .seconds(30)) { FileManager.default.fileExists(atPath: marker.path) }
        let after = try await ExactlyOnceTests.produce(cluster, topic: "locked-term", count: half, partitions: 8, from: half)
        try await Task.sleep(for: .seconds(25))
        let signalledAt = ContinuousClock.now
        first.terminate()
        first.waitUntilExit()
        let took = ContinuousClock.now - signalledAt
        #expect(took < .seconds(15), "SIGTERM with the store locked took \(took) (shutdown timeout 10 s)")
        #expect(first.terminationReason == .exit && first.terminationStatus == 0)
        #expect(try await fixture.state(store).processed == half)

        Self.release(lock, marker: marker)
        let second = try fixture.start(cluster, topic: "locked-term", group: "balances", name: "second")
        defer { ExactlyOnceTests.stop(second) }
        try await ExactlyOnceTests.waitUntilProcessed(fixture, store, count: 2 * half, timeout: .seconds(120))
        let state = try await fixture.state(store)
        #expect(state.processed == 2 * half)
        #expect(state.balances == Self.sum(before, after))
        print("SIGTERM with the SQLite store locked: exited after \(took); all \(2 * half) exact after the restart")
    }
}
