import Foundation
import Logging
import Sluice
import SluiceDatabase
import SluiceSQLite
import SluiceTesting
import Synchronization
import Testing

/// The pipeline on the real stores: a throwing handler leaves no trace, a reused event_id with
/// another payload reaches the dead-letter sink with its code, retention prunes in the background,
/// and `--database` names either store.
struct StorePipelineTests {
    static let logger = Logger(label: "sluice.tests.store-pipeline") { _ in SwiftLogNoOpLogHandler() }
    static let schema = #"{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["n"],"properties":{"n":{"type":"integer"}}}"#

    static func record(_ id: String, n: Int, offset: Int64) -> Record {
        let value = #"{"event_id":"\#(id)","event_type":"tests.number_counted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"t","correlation_id":"c","causation_id":"x-\#(id)","subject":"s:1","data":{"n":\#(n)}}"#
        return Record(topic: "numbers", partition: 0, offset: Offset(offset), value: Array(value.utf8))
    }

    struct Number: Decodable, Sendable { var n: Int }

    /// Runs the checks against `store`.
    static func check(_ store: SQLDedupeStore) async throws {
        var registry = SchemaRegistry()
        try registry.register(eventType: "tests.number_counted", version: 1, schemaText: schema)
        let attempts = Mutex(0)
        var router = EventRouter<SQLDedupeStore.Transaction>()
        router.on("tests.number_counted", as: Number.self, handler: "numbers") { event, context in
            try await context.transaction.execute("INSERT INTO numbers (event_id, n) VALUES (?, ?)", [.text(event.eventID), SQLValue(event.payload.n)])
            // The first attempt for n = 13 fails after writing: the retry must find no trace of it.
            let attempt = attempts.withLock { count in
                if event.payload.n == 13 { count += 1 }
                return count
            }
            if event.payload.n == 13 && attempt == 1 { throw SluiceError(code: "FLAKY", message: "first attempt", isRetriable: true) }
        }
        let sink = RecordingDeadLetterSink()
        var configuration = EventPipeline<SQLDedupeStore>.Configuration(group: "g")
        configuration.retry.initialDelay = .milliseconds(1)
        let pipeline = EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router, store: store, deadLetterSink: sink, logger: logger)

        let outcomes = await pipeline.process([
            record("e1", n: 1, offset: 0), record("e13", n: 13, offset: 1), record("e2", n: 2, offset: 2),
            record("e1", n: 1, offset: 3),  // redelivered: same payload
            record("e2", n: 99, offset: 4),  // same event_id, another payload
        ])
        #expect(outcomes == [.handled, .handled, .handled, .duplicate, .deadLettered(.eventIDPayloadMismatch)])
        #expect(sink.codes == ["EVENT_ID_PAYLOAD_MISMATCH"])
        let rows = try await store.withTransaction { try await $0.query("SELECT event_id, n FROM numbers ORDER BY event_id") }
        #expect(rows.map { $0["event_id"]?.string ?? "" } == ["e1", "e13", "e2"], "the failed attempt's row was rolled back")
        let processed = try await store.withTransaction { try await $0.query("SELECT count(*) AS n FROM sluice_processed_events") }
        #expect(processed[0]["n"]?.int == 3)
        // Stored by the duplicate at offset 3; the dead-lettered record's outcome is the broker's
        // acknowledgement, and Kafka's commit covers it.
        #expect(try await store.storedOffsets(group: "g", partitions: [TopicPartition(topic: "numbers", partition: 0)]).values.first == Offset(4))

        // Retention: everything processed "now" is younger than the horizon until the clock moves.
        let pruner = ProcessedEventPruner(store: store, retention: ProcessedEventRetention(horizon: .seconds(3_600)), logger: logger)
        #expect(try await pruner.pruneOnce() == 0)
        let later = ProcessedEventPruner(
            store: store, retention: ProcessedEventRetention(horizon: .seconds(3_600)), logger: logger, clock: { Date().addingTimeInterval(7_200) })
        #expect(try await later.pruneOnce() == 3)
    }

    static let migrations = [StoreMigration(id: "numbers-1", sql: "CREATE TABLE numbers (event_id TEXT NOT NULL, n BIGINT NOT NULL)")]

    @Test("SQLite: a throwing handler leaves no trace, a payload mismatch is dead-lettered with its code, retention prunes")
    func sqlite() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-store-pipeline-\(UUID().uuidString).sqlite").path
        try await Self.check(try await SQLDedupeStore.open(DatabaseLocation(parsing: path), migrations: Self.migrations, logger: Self.logger))
    }

    @Test("PostgreSQL: a throwing handler leaves no trace, a payload mismatch is dead-lettered with its code, retention prunes",
          .enabled(if: !PostgresTestDatabase.isSkipped, "SLUICE_SKIP_POSTGRES=1"))
    func postgres() async throws {
        try await PostgresTestDatabase.with { database in
            let store = try await SQLDedupeStore.open(DatabaseLocation(parsing: database.url), migrations: Self.migrations, logger: Self.logger)
            try await Self.check(store)
            await store.close()
        }
    }

    /// A SQLite store filled by an earlier version: its processed-event row carries the hash the
    /// hand-written SHA-256 wrote (before swift-crypto). The same bytes redelivered must still be a
    /// duplicate, and other bytes a mismatch.
    @Test("SQLite: a processed-event row written by an earlier version still matches its redelivery")
    func hashOfEarlierVersions() async throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-store-hash-\(UUID().uuidString).sqlite").path
        let store = try await SQLDedupeStore.open(DatabaseLocation(parsing: path), migrations: Self.migrations, logger: Self.logger)
        let earlierHash = "d5fd03a73aaf2035a8bab29d32f822e8723eac3f00df478019641549ae605858"  // of record("e1", n: 1)
        _ = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: "g", handler: "numbers", eventID: "e1", payloadHash: earlierHash, at: Date())
        }
        var registry = SchemaRegistry()
        try registry.register(eventType: "tests.number_counted", version: 1, schemaText: Self.schema)
        var router = EventRouter<SQLDedupeStore.Transaction>()
        router.on("tests.number_counted", as: Number.self, handler: "numbers") { event, context in
            try await context.transaction.execute("INSERT INTO numbers (event_id, n) VALUES (?, ?)", [.text(event.eventID), SQLValue(event.payload.n)])
        }
        let pipeline = EventPipeline(
            configuration: .init(group: "g"), decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router, store: store, deadLetterSink: RecordingDeadLetterSink(), logger: Self.logger)
        let outcomes = await pipeline.process([Self.record("e1", n: 1, offset: 0), Self.record("e1", n: 2, offset: 1)])
        #expect(outcomes == [.duplicate, .deadLettered(.eventIDPayloadMismatch)])
        let rows = try await store.withTransaction { try await $0.query("SELECT count(*) AS n FROM numbers") }
        #expect(rows[0]["n"]?.int == 0, "no handler ran")
    }

    @Test("--database: a path or sqlite:/file: prefix is SQLite, postgres:// and postgresql:// are PostgreSQL, anything else is refused with STORE_LOCATION_INVALID")
    func databaseLocations() throws {
        #expect(try DatabaseLocation(parsing: "/var/lib/app/store.sqlite") == .sqlite(path: "/var/lib/app/store.sqlite"))
        #expect(try DatabaseLocation(parsing: "relative.db") == .sqlite(path: "relative.db"))
        #expect(try DatabaseLocation(parsing: "sqlite:/tmp/a.db") == .sqlite(path: "/tmp/a.db"))
        #expect(try DatabaseLocation(parsing: "file:///tmp/a.db") == .sqlite(path: "/tmp/a.db"))
        #expect(try DatabaseLocation(parsing: "postgres://u:pw@db:5432/app") == .postgres(url: "postgres://u:pw@db:5432/app"))
        #expect(try DatabaseLocation(parsing: "POSTGRESQL://db/app") == .postgres(url: "POSTGRESQL://db/app"))
        #expect(try DatabaseLocation(parsing: "postgres://u:secret@db/app").description == "postgres://u:***@db/app")
        for bad in ["", "mysql://db/app", "/var/lib/app/"] {
            #expect(throws: SluiceError.self) { try DatabaseLocation(parsing: bad) }
            #expect((try? DatabaseLocation(parsing: bad)) == nil)
        }
        do {
            _ = try DatabaseLocation(parsing: "mysql://db/app")
        } catch {
            #expect(error.code == .storeLocationInvalid)
        }
    }
}
