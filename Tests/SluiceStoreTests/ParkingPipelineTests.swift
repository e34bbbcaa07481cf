import Foundation
import Logging
import Sluice
import SluiceDatabase
import SluiceSQLite
import SluiceTesting
import Synchronization
import Testing

/// `--on-poison park` through the pipeline, on every store: a key whose event fails for good is
/// parked, its later events wait in order while every other key flows, a replay skips it, and a
/// release after the fix runs its events in order. (The store's own parking contract:
/// ``ParkingConformance``.)
struct ParkingPipelineTests {
    static let logger = Logger(label: "sluice.tests.parking") { _ in SwiftLogNoOpLogHandler() }
    static let schema = #"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}"#
    static let topic = "steps"

    struct Step: Decodable, Sendable { var n: Int }

    /// A stream on 4 partitions: keys k1…k50, each with events n = 1…6, a key's events on one
    /// partition (by its number), interleaved with the other keys' in offset order.
    static func stream(events: Int = 6) -> [Int32: [Record]] {
        var partitions: [Int32: [Record]] = [:]
        for n in 1...events {
            for k in 1...50 {
                let partition = Int32(k % 4)
                let offset = Int64(partitions[partition]?.count ?? 0)
                partitions[partition, default: []].append(record(key: "k\(k)", n: n, partition: partition, offset: offset))
            }
        }
        return partitions
    }

    static func record(key: String?, n: Int, partition: Int32, offset: Int64, subject: String? = nil) -> Record {
        let id = "\(key ?? subject ?? "none")-\(n)"
        let value = #"{"event_id":"\#(id)","event_type":"tests.step_completed","schema_version":1,"occurred_at":"2026-12-01T10:00:00Z","producer":"t","correlation_id":"c","causation_id":"x-\#(id)","subject":"\#(subject ?? "order:\(key ?? "none")")","data":{"n":\#(n)}}"#
        return Record(
            topic: topic, partition: partition, offset: Offset(offset), key: key.map { Array($0.utf8) }, value: Array(value.utf8))
    }

    /// The keys whose events the handler refuses (a bug, then its fix: a toggle).
    final class Refusals: Sendable {
        let refused = Mutex<Set<String>>([])
        func refuse(_ key: String, _ n: Int) { refused.withLock { _ = $0.insert("\(key)#\(n)") } }
        func fix() { refused.withLock { $0.removeAll() } }
        func isRefused(_ key: String, _ n: Int) -> Bool { refused.withLock { $0.contains("\(key)#\(n)") } }
    }

    static func pipeline<Store: DedupeStore>(
        _ store: Store, parking: Parking, refusals: Refusals, sink: RecordingDeadLetterSink, storesOffsets: Bool = true,
        apply: @escaping @Sendable (Store.Transaction, String, Int) async throws -> Void
    ) throws -> EventPipeline<Store> {
        var registry = SchemaRegistry()
        try registry.register(eventType: "tests.step_completed", version: 1, schemaText: schema)
        var router = EventRouter<Store.Transaction>()
        router.on("tests.step_completed", as: Step.self, handler: "steps") { event, context in
            let key = String(event.subject.dropFirst("order:".count))
            if refusals.isRefused(key, event.payload.n) {
                throw SluiceError(code: "STEP_REFUSED", message: "step \(event.payload.n) of \(key) refused")
            }
            try await apply(context.transaction, key, event.payload.n)
        }
        var configuration = EventPipeline<Store>.Configuration(group: "g")
        configuration.parking = parking
        configuration.storesOffsets = storesOffsets
        configuration.isReplay = !storesOffsets
        configuration.retry.initialDelay = .milliseconds(1)
        return EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router, store: store, deadLetterSink: sink, logger: logger)
    }

    /// The whole story on one store; `apply` records a key's step in the transaction,
    /// `applied` reads the steps each key committed, in order.
    static func parkReplayAndRelease<Store: DedupeStore>(
        _ store: Store,
        apply: @escaping @Sendable (Store.Transaction, String, Int) async throws -> Void,
        applied: @escaping @Sendable (Store) async throws -> [String: [Int]]
    ) async throws {
        let refusals = Refusals()
        refusals.refuse("k7", 3)  // k7's third event fails for good (a non-retriable error)
        refusals.refuse("k9", 2)  // k9's second event too; its fix comes later
        let sink = RecordingDeadLetterSink()
        let live = try pipeline(store, parking: Parking(mode: .park), refusals: refusals, sink: sink, apply: apply)
        let partitions = stream()

        var outcomes: [String: [RecordOutcome]] = [:]
        for (partition, records) in partitions.sorted(by: { $0.key < $1.key }) {
            // Batches as a lane gets them: groups, and the one-at-a-time path after a failure.
            for start in stride(from: 0, to: records.count, by: 32) {
                let batch = Array(records[start..<min(start + 32, records.count)])
                for (record, outcome) in zip(batch, await live.process(batch)) {
                    outcomes[String(decoding: record.key ?? [], as: UTF8.self), default: []].append(outcome)
                }
            }
            let stored = try await store.storedOffsets(group: "g", partitions: [TopicPartition(topic: topic, partition: partition)])
            #expect(stored.values.first == Offset(Int64(records.count)), "partition \(partition): the committed position reaches its end")
        }
        #expect(outcomes["k7"] == [.handled, .handled, .deadLettered("STEP_REFUSED"), .parked, .parked, .parked])
        #expect(outcomes["k9"] == [.handled, .deadLettered("STEP_REFUSED"), .parked, .parked, .parked, .parked])
        var steps = try await applied(store)
        #expect(steps["k7"] == [1, 2], "nothing of k7 after its failure is handled")
        #expect(steps["k9"] == [1])
        for k in 1...50 where k != 7 && k != 9 { #expect(steps["k\(k)"] == [1, 2, 3, 4, 5, 6], "k\(k) flows in order") }
        #expect(sink.records.count == 2, "only the head records are dead-lettered")
        #expect(sink.records.allSatisfy { $0.headers.contains(RecordHeader(name: "sluice.parked", string: "true")) })

        let listed = try await store.withTransaction { try await $0.parkedKeys(group: "g", topic: nil) }
        #expect(listed.map(\.key.description).sorted() == ["k7", "k9"])
        #expect(listed.first { $0.key == ParkingKey("k7") }?.records == 4, "k7's events 3…6")
        #expect(listed.first { $0.key == ParkingKey("k9") }?.records == 5)
        #expect(listed.first { $0.key == ParkingKey("k7") }?.failure.code == "STEP_REFUSED")

        // A replay respecting parking handles nothing and appends nothing for parked keys.
        let replay = try pipeline(store, parking: Parking(mode: .skip), refusals: refusals, sink: sink, storesOffsets: false, apply: apply)
        for records in partitions.values { _ = await replay.process(records) }
        #expect(replay.parkedKeysSkipped[topic]?[ParkingKey("k7")] == 6)
        #expect(replay.parkedKeysSkipped[topic]?[ParkingKey("k9")] == 6)
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: "g", topic: nil) } == listed, "the replay appended nothing")

        // Release k9 while still broken: it stays parked from its failing record, and says so.
        let stillBroken = try await live.releaseParked(topic: topic, key: ParkingKey("k9"), claimant: "test:1")
        #expect(!stillBroken.isReleased)
        #expect(stillBroken.failure?.reason.code == "STEP_REFUSED")
        #expect(stillBroken.failure?.offset == partitions[1]?.filter { $0.key == Array("k9".utf8) }[1].offset, "k9's second event")
        #expect(stillBroken.remaining == 5)

        // The fix: k7 releases in order, then k9.
        refusals.fix()
        let released = try await live.releaseParked(topic: topic, key: ParkingKey("k7"), claimant: "test:1")
        #expect(released.isReleased)
        #expect(released.handled == 4)
        let k9 = try await live.releaseParked(topic: topic, key: ParkingKey("k9"), claimant: "test:2")
        #expect(k9.isReleased && k9.handled == 5)
        steps = try await applied(store)
        #expect(steps["k7"] == [1, 2, 3, 4, 5, 6])
        #expect(steps["k9"] == [1, 2, 3, 4, 5, 6])
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: "g", topic: nil) }.isEmpty)
        await #expect(throws: SluiceError.self) { try await live.releaseParked(topic: topic, key: ParkingKey("k7"), claimant: "test:1") }

        // Released: k7's next event is handled at once.
        let next = record(key: "k7", n: 7, partition: 3, offset: Int64(partitions[3]!.count))
        #expect(await live.process([next, record(key: "k1", n: 7, partition: 1, offset: Int64(partitions[1]!.count))]) == [.handled, .handled])
        #expect(try await applied(store)["k7"] == [1, 2, 3, 4, 5, 6, 7])
    }

    static func sqlApply(_ transaction: SQLDedupeStore.Transaction, _ key: String, _ n: Int) async throws {
        try await transaction.execute(
            "INSERT INTO steps (k, ns) VALUES (?, ?) ON CONFLICT (k) DO UPDATE SET ns = steps.ns || ',' || excluded.ns",
            [.text(key), .text(String(n))])
    }

    static func sqlApplied(_ store: SQLDedupeStore) async throws -> [String: [Int]] {
        let rows = try await store.withTransaction { try await $0.query("SELECT k, ns FROM steps") }
        return Dictionary(uniqueKeysWithValues: rows.map { row in
            (row["k"]?.string ?? "", (row["ns"]?.string ?? "").split(separator: ",").compactMap { Int($0) })
        })
    }

    static let migrations = [StoreMigration(id: "steps-1", sql: "CREATE TABLE steps (k TEXT PRIMARY KEY, ns TEXT NOT NULL)")]

    @Test("In memory: a poison key is parked, its later events wait in order, a replay skips it, a release runs it in order")
    func inMemory() async throws {
        try await Self.parkReplayAndRelease(
            InMemoryDedupeStore(),
            apply: { transaction, key, n in
                let before = transaction.value(forKey: key).flatMap { if case .string(let text) = $0 { text } else { nil } }
                transaction.setValue(.string(before.map { "\($0),\(n)" } ?? "\(n)"), forKey: key)
            },
            applied: { store in
                var steps: [String: [Int]] = [:]
                for k in 1...50 {
                    if case .string(let text) = store.committedValue(forKey: "k\(k)") {
                        steps["k\(k)"] = text.split(separator: ",").compactMap { Int($0) }
                    }
                }
                return steps
            })
    }

    @Test("SQLite: a poison key is parked, its later events wait in order, a replay skips it, a release runs it in order")
    func sqlite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-parking-\(UUID().uuidString).sqlite").path
        defer { try? FileManager.default.removeItem(atPath: path) }
        let store = try await SQLDedupeStore.open(DatabaseLocation(parsing: path), migrations: Self.migrations, logger: Self.logger)
        try await Self.parkReplayAndRelease(store, apply: Self.sqlApply, applied: Self.sqlApplied)
    }

    @Test("PostgreSQL: a poison key is parked, its later events wait in order, a replay skips it, a release runs it in order",
          .enabled(if: !PostgresTestDatabase.isSkipped, "SLUICE_SKIP_POSTGRES=1"))
    func postgres() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await SQLDedupeStore.open(DatabaseLocation(parsing: database.url), migrations: Self.migrations, logger: Self.logger)
            try await Self.parkReplayAndRelease(store, apply: Self.sqlApply, applied: Self.sqlApplied)
            await store.close()
        }
    }

    @Test("--park-by subject: the envelope's subject is the ordering scope; records without a key still park; --on-poison dead-letter parks nothing")
    func bySubjectAndOff() async throws {
        let store = InMemoryDedupeStore()
        let refusals = Refusals()
        refusals.refuse("a", 1)
        let apply: @Sendable (InMemoryDedupeStore.Transaction, String, Int) async throws -> Void = { transaction, key, n in
            transaction.setValue(.string("\(n)"), forKey: "\(key)-\(n)")
        }
        let records = (0..<4).map { index in
            Self.record(key: nil, n: index / 2 + 1, partition: 0, offset: Int64(index), subject: index % 2 == 0 ? "order:a" : "order:b")
        }
        let sink = RecordingDeadLetterSink()
        let bySubject = try Self.pipeline(store, parking: Parking(mode: .park, scope: .subject), refusals: refusals, sink: sink, apply: apply)
        #expect(await bySubject.process(records) == [.deadLettered("STEP_REFUSED"), .handled, .parked, .handled])
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: "g", topic: nil) }.map(\.key) == [ParkingKey("order:a")])

        // By key, records without a key are never parked; with parking off nothing is looked up.
        let other = InMemoryDedupeStore()
        let byKey = try Self.pipeline(other, parking: Parking(mode: .park), refusals: refusals, sink: sink, apply: apply)
        #expect(await byKey.process(records) == [.deadLettered("STEP_REFUSED"), .handled, .handled, .handled])
        let off = try Self.pipeline(InMemoryDedupeStore(), parking: .off, refusals: refusals, sink: RecordingDeadLetterSink(), apply: apply)
        let keyed = records.map { record in var record = record; record.key = Array("same".utf8); return record }
        #expect(await off.process(keyed) == [.deadLettered("STEP_REFUSED"), .handled, .handled, .handled])
        #expect(try await other.withTransaction { try await $0.parkedKeys(group: "g", topic: nil) }.isEmpty)

        // A policy per topic: parking on this topic only, dead-letter elsewhere.
        let perTopic = InMemoryDedupeStore()
        let onlyOthers = try Self.pipeline(
            perTopic, parking: Parking(mode: .park, topics: [Self.topic: .off]), refusals: refusals, sink: RecordingDeadLetterSink(),
            apply: apply)
        #expect(await onlyOthers.process(keyed) == [.deadLettered("STEP_REFUSED"), .handled, .handled, .handled])
        let onlyThis = try Self.pipeline(
            perTopic, parking: Parking(mode: .off, topics: [Self.topic: .park]), refusals: refusals, sink: RecordingDeadLetterSink(),
            apply: apply)
        let again = keyed.map { record in var record = record; record.offset = Offset(record.offset.rawValue + 10); return record }
        #expect(await onlyThis.process(again) == [.deadLettered("STEP_REFUSED"), .parked, .parked, .parked])
    }
}

/// The parking conformance checks on each store.
struct ParkingStoreTests {
    static let logger = Logger(label: "sluice.tests.parking-store") { _ in SwiftLogNoOpLogHandler() }
    typealias Checks = ParkingConformance

    @Test("Park, append and list: the sequence in offset order, byte-exact, per group and topic",
          arguments: ["memory", "sqlite", "postgres"])
    func parkAppendAndList(store: String) async throws { try await Self.run(store, Checks.parkAppendAndList, Checks.parkAppendAndList, Checks.parkAppendAndList) }

    @Test("Removing records head first releases the key with the last; a rollback parks nothing", arguments: ["memory", "sqlite", "postgres"])
    func removeReleases(store: String) async throws {
        try await Self.run(store, Checks.removeReleasesWithTheLastRecord, Checks.removeReleasesWithTheLastRecord, Checks.removeReleasesWithTheLastRecord)
    }

    @Test("A savepoint that rolls back takes its appends with it", arguments: ["memory", "sqlite", "postgres"])
    func savepoints(store: String) async throws {
        try await Self.run(store, Checks.savepointRollsBackAppends, Checks.savepointRollsBackAppends, Checks.savepointRollsBackAppends)
    }

    @Test("Release claims: one holder, renewals, stale takeover, failures recorded", arguments: ["memory", "sqlite", "postgres"])
    func claims(store: String) async throws { try await Self.run(store, Checks.releaseClaims, Checks.releaseClaims, Checks.releaseClaims) }

    @Test("Concurrent release attempts: exactly one wins, the others are told who holds the key", arguments: ["memory", "sqlite", "postgres"])
    func concurrentClaims(store: String) async throws {
        try await Self.run(store, Checks.concurrentClaimsOneWins, Checks.concurrentClaimsOneWins, Checks.concurrentClaimsOneWins)
    }

    @Test("Discard drops the sequence and records who did it", arguments: ["memory", "sqlite", "postgres"])
    func discard(store: String) async throws {
        try await Self.run(store, Checks.discardDropsTheSequence, Checks.discardDropsTheSequence, Checks.discardDropsTheSequence)
    }

    static func run(
        _ store: String,
        _ memory: (ParkingConformance.Open<InMemoryDedupeStore>) async throws -> Void,
        _ sqlite: (ParkingConformance.Open<SQLiteDedupeStore>) async throws -> Void,
        _ postgres: (ParkingConformance.Open<SQLDedupeStore>) async throws -> Void
    ) async throws {
        switch store {
        case "memory":
            let store = InMemoryDedupeStore()  // one process's memory: every "open" is this store
            try await memory { store }
        case "sqlite":
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-parking-\(UUID().uuidString).sqlite").path
            defer { try? FileManager.default.removeItem(atPath: path) }
            try await sqlite { try await SQLiteDedupeStore.open(path: path, logger: logger) }
        default:
            guard !PostgresTestDatabase.isSkipped else { return }
            try await PostgresTestDatabase.with { database in
                let opened = Mutex<[SQLDedupeStore]>([])
                try await postgres {
                    let store = try await SQLDedupeStore.open(DatabaseLocation(parsing: database.url), logger: logger)
                    opened.withLock { $0.append(store) }
                    return store
                }
                for store in opened.withLock({ $0 }) { await store.close() }
            }
        }
    }
}
