import ArgumentParser
import CRawConsumeLoop
import CoreMetrics
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import GRDB
import Logging
import OrderFulfillment
import PostgresNIO
import Sluice
import SluiceCLI
import SluiceDatabase
import SluiceHTTP
import ServiceLifecycle
import SluiceKafka
import SluicePostgres
import SluiceSQLite
import Synchronization

/// Every layer of the pipeline against its limit, on the same records, in one run: the raw C
/// loop, `KafkaConsumer` alone, the full pipeline with the in-memory store (a no-op handler and
/// one that writes a value), the order-fulfillment workload on SQLite and the same statements in
/// a bare SQLite loop, then produce→handled latency at a fixed rate and resident memory.
struct PipelineBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pipeline",
        abstract: "Records/s of every pipeline layer against its limit in one run; latency at a fixed rate; RATIO lines.")

    @Option(help: "orders.order_placed envelopes to produce and read in each throughput measurement.") var records = 200_000
    @Option(help: "Partitions of the topic (the embedded broker keeps ~5 MB per partition).") var partitions = 48
    @Option(help: "Records per store transaction in the bare SQLite loop (the pipeline's default bound on a transaction).") var groupSize = 1_000
    @Option(help: "Records produced at the fixed rate for the latency measurement (0 skips it).") var latencyRecords = 50_000
    @Option(help: "Produce rate for the latency measurement, records/s.") var latencyRate = 10_000
    @Option(help: "Records a lane holds before its partition is paused (the consumer's default: 1,000).") var laneCapacity = 1_000
    @Option(help: "Run these layers only (comma-separated), for profiling or a pair's ratio: raw, consumer, memory-noop, memory-observed, memory-write, sqlite-orders, bare-sqlite, postgres-orders, bare-postgres, latency.")
    var only: String?
    @Option(help: "A postgres:// URL of an empty database (sslmode=disable), to add the order-fulfillment workload on PostgreSQL and the same statements in a bare PostgresNIO loop.")
    var postgres: String?
    @Option(help: "What a savepoint covers in the store layers and the bare loops: handler (the default) or group (GroupCommit.savepoints).")
    var savepoints: String = "handler"

    private var savepointScope: EventPipeline<InMemoryDedupeStore>.GroupCommit.SavepointScope {
        savepoints == "group" ? .group : .handler
    }

    func validate() throws {
        guard ["handler", "group"].contains(savepoints) else { throw ValidationError("--savepoints takes handler or group") }
    }

    private func runs(_ layer: String) -> Bool { only.map { $0.split(separator: ",").contains(Substring(layer)) } ?? true }

    func run() async throws {
        var logger = Logger(label: "sluice.benchmarks") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        let topic = "orders.events"
        try cluster.createTopic(topic, partitions: partitions)
        let values = (0..<records).map(Self.orderPlaced)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
        for (index, value) in values.enumerated() {
            try await producer.enqueue(
                ProducerRecord(topic: topic, partition: Int32(index % partitions), key: Array("ord_\(index)".utf8), value: value)
            ) { result in
                if case .failure(let error) = result { fatalError("benchmark data could not be produced: \(error)") }
            }
        }
        try await producer.flush(timeout: .seconds(120))
        let averageBytes = values.reduce(0) { $0 + $1.count } / max(1, values.count)
        print("\(records) orders.order_placed envelopes (~\(averageBytes) B, two line items) over \(partitions) partitions of one embedded broker; savepoints per \(savepoints)")

        var rates: [String: Double] = [:]
        if runs("raw") {
            var checksum: Int64 = 0
            let rawSeconds = sluice_raw_consume(cluster.bootstrapServers, topic, Int32(partitions), Int64(records), &checksum)
            guard rawSeconds > 0 else { throw ValidationError("the raw loop failed") }
            rates["raw"] = report("raw C librdkafka loop", Double(records - 1) / rawSeconds)
        }
        if runs("consumer") {
            rates["consumer"] = report("KafkaConsumer alone", try await consumeOnly(cluster: cluster, topic: topic, logger: logger))
        }

        let registry = try SchemaRegistry(directory: Self.eventSchemas)
        if runs("memory-noop") {
            var noop = EventRouter<InMemoryDedupeStore.Transaction>()
            noop.on("orders.order_placed", as: Fulfillment.OrderPlaced.self, handler: "record-order") { _, _ in }
            rates["memory-noop"] = report("pipeline, in-memory store, no-op handler", try await pipeline(
                "memory-noop", cluster: cluster, topic: topic, registry: registry, store: InMemoryDedupeStore(), router: noop, logger: logger))
        }
        if runs("memory-observed") {
            var noop = EventRouter<InMemoryDedupeStore.Transaction>()
            noop.on("orders.order_placed", as: Fulfillment.OrderPlaced.self, handler: "record-order") { _, _ in }
            rates["memory-observed"] = report(
                "pipeline, in-memory store, no-op handler, operations endpoint on (scraped every second) and no tracer bootstrapped",
                try await pipeline(
                    "memory-observed", cluster: cluster, topic: topic, registry: registry, store: InMemoryDedupeStore(), router: noop,
                    logger: logger, observed: true))
        }
        if runs("memory-write") {
            var writes = EventRouter<InMemoryDedupeStore.Transaction>()
            writes.on("orders.order_placed", as: Fulfillment.OrderPlaced.self, handler: "record-order") { event, context in
                context.transaction.setValue(.number(JSONNumber(Int64(event.payload.totalMinor))), forKey: event.payload.orderID)
            }
            rates["memory-write"] = report("pipeline, in-memory store, handler writes a value", try await pipeline(
                "memory-write", cluster: cluster, topic: topic, registry: registry, store: InMemoryDedupeStore(), router: writes, logger: logger))
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-pipeline-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        if runs("sqlite-orders") {
            let sqliteStore = SQLDedupeStore.sqlite(try await SQLiteDedupeStore.open(
                path: directory.appendingPathComponent("orders.sqlite").path, migrations: Fulfillment.migrations(), logger: logger))
            rates["sqlite-orders"] = report("order fulfillment on SQLite (synchronous = FULL)", try await pipeline(
                "sqlite-orders", cluster: cluster, topic: topic, registry: registry, store: sqliteStore,
                router: Fulfillment.router(notifier: OutboxNotifier(path: nil)), logger: logger))
        }
        if runs("bare-sqlite") {
            rates["bare-sqlite"] = report(
                "the same statements in a bare SQLite loop (no Kafka, no pipeline; \(groupSize) per transaction)",
                try bareSQLiteLoop(values: values, path: directory.appendingPathComponent("bare.sqlite").path))
        }

        if let postgres, runs("postgres-orders") {
            let store = try await SQLDedupeStore.open(.postgres(url: postgres), migrations: Fulfillment.migrations(), logger: logger)
            rates["postgres-orders"] = report("order fulfillment on PostgreSQL (\(try await Self.fsyncSetting(postgres)))", try await pipeline(
                "postgres-orders", cluster: cluster, topic: topic, registry: registry, store: store,
                router: Fulfillment.router(notifier: OutboxNotifier(path: nil)), logger: logger))
            await store.close()
        }
        if let postgres, runs("bare-postgres") {
            rates["bare-postgres"] = report(
                "the same statements in a bare PostgresNIO loop (no Kafka, no pipeline; \(groupSize) per transaction, \(PostgresDedupeStore.defaultPoolSize) connections)",
                try await barePostgresLoop(values: values, url: postgres, logger: logger))
        }

        if latencyRecords > 0 && runs("latency") {
            let latency = try await produceToHandledLatency(cluster: cluster, directory: directory, registry: registry, logger: logger)
            print(String(
                format: "latency produce→handled at %d records/s on SQLite, %d records: p50 %.1f ms, p99 %.1f ms, p999 %.1f ms",
                latencyRate, latencyRecords, latency.p50, latency.p99, latency.p999))
            print(String(format: "RATIO latency-p99-ms/20: %.3f", latency.p99 / 20))
        }
        let memory = ResidentMemory.read()
        print("resident memory: now \(memory.current / 1_024) MiB, peak \(memory.peak / 1_024) MiB")

        for (name, numerator, denominator) in [
            ("consumer/raw", "consumer", "raw"), ("pipeline-memory/raw", "memory-noop", "raw"),
            ("pipeline-observed/pipeline-memory", "memory-observed", "memory-noop"),
            ("pipeline-memory-write/raw", "memory-write", "raw"), ("sqlite-orders/bare-sqlite", "sqlite-orders", "bare-sqlite"),
            ("postgres-orders/bare-postgres", "postgres-orders", "bare-postgres"), ("postgres-orders/sqlite-orders", "postgres-orders", "sqlite-orders"),
        ] {
            guard let top = rates[numerator], let bottom = rates[denominator] else { continue }
            print(String(format: "RATIO %@: %.3f", name, top / bottom))
        }
    }

    private func report(_ name: String, _ rate: Double) -> Double {
        print(String(format: "%@: %.0f records/s", name, rate))
        return rate
    }

    static var eventSchemas: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("EventSchemas").path
    }

    /// An `orders.order_placed` v1 envelope with two line items.
    static func orderPlaced(_ index: Int) -> [UInt8] {
        let order = "ord_\(String(index, radix: 36).leftPadded(to: 8))"
        let customer = "cus_\(String(index % 9_973, radix: 36).leftPadded(to: 8))"
        let text = #"{"event_id":"evt_\#(index)","event_type":"orders.order_placed","schema_version":1,"occurred_at":"2026-12-01T09:00:00.000Z","producer":"storefront","correlation_id":"corr_\#(index)","causation_id":"cmd_checkout_\#(index)","subject":"order:\#(order)","data":{"order_id":"\#(order)","customer_id":"\#(customer)","placed_at":"2026-12-01T09:00:00Z","currency":"EUR","total_minor":\#(4_200 + index % 1_000),"line_items":[{"sku":"SKU-\#(index % 97)","quantity":\#(1 + index % 3),"unit_price_minor":1200},{"sku":"SKU-\#(100 + index % 89)","quantity":1,"unit_price_minor":\#(1_800 + index % 1_000)}]}}"#
        return Array(text.utf8)
    }

    // MARK: - Layers

    private func consumeOnly(cluster: EmbeddedKafkaCluster, topic: String, logger: Logger) async throws -> Double {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "bench-consumer-alone")
        configuration.properties["auto.offset.reset"] = "earliest"
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        try await consumer.subscribe([topic])
        var count = 0
        var start: ContinuousClock.Instant?
        for try await batch in consumer.batches {
            if start == nil { start = .now }
            count += batch.count
            if count >= records { break }
        }
        let elapsed = ContinuousClock.now - (start ?? .now)
        try await consumer.close()
        return Double(count) / elapsed.seconds
    }

    /// An `EventConsumer` of its own group, from the beginning, until every record was handled
    /// (counted from `sluice.records.handled`, which moves after the store commit).
    ///
    /// `observed` adds what production adds: the operations endpoint (`run --http-address`) fed
    /// by the Prometheus registry, and a scraper asking `/metrics`, `/health/ready` and
    /// `/partitions` every second (a busy Prometheus and orchestrator; theirs usually ask every
    /// 10 to 15 s). No tracer is bootstrapped: the pipeline's tracing is the no-op one.
    private func pipeline<Store: DedupeStore>(
        _ name: String, cluster: EmbeddedKafkaCluster, topic: String, registry: SchemaRegistry, store: Store,
        router: EventRouter<Store.Transaction>, logger: Logger, observed: Bool = false
    ) async throws -> Double {
        var consumer = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "bench-\(name)")
        consumer.properties["auto.offset.reset"] = "earliest"
        var configuration = EventConsumer<Store>.Configuration(consumer: consumer, topics: [topic])
        configuration.dispatcher.laneCapacity = laneCapacity
        configuration.pipeline.groupCommit.savepoints = savepoints == "group" ? .group : .handler
        configuration.dispatcher.resumeBelow = laneCapacity / 4
        let counter = HandledMetrics()
        let sink = try KafkaDeadLetterSink(producer: KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger))
        let prometheus = observed ? PrometheusMetrics() : nil
        let service = try EventConsumer(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router, store: store, deadLetterSink: sink, logger: logger,
            metricsFactory: prometheus.map { $0.factory(alongside: counter) } ?? counter)
        let task = Task { try await service.run() }
        var endpoint: (group: ServiceGroup, task: Task<Void, any Error>, scraper: Task<Int, any Error>)?
        if let prometheus {
            let bound = AsyncStream.makeStream(of: HTTPAddress.self)
            let server = OperationsEndpoint(
                address: HTTPAddress(host: "127.0.0.1", port: 0), source: ConsumerOperationsSource(consumer: service),
                metrics: prometheus, logger: logger) { bound.continuation.yield($0) }
            let group = ServiceGroup(configuration: .init(services: [server], logger: logger))
            let serving = Task { try await group.run() }
            var addresses = bound.stream.makeAsyncIterator()
            guard let address = await addresses.next() else { throw ValidationError("the operations endpoint did not start") }
            let scraper = Task { () async throws -> Int in
                let session = URLSession(configuration: .ephemeral)
                defer { session.finishTasksAndInvalidate() }
                var answers = 0
                while !Task.isCancelled {
                    for path in ["/metrics", "/health/ready", "/partitions"] {
                        guard let url = URL(string: "http://\(address)\(path)") else { continue }
                        _ = try? await session.data(from: url)
                        answers += 1
                    }
                    try? await Task.sleep(for: .seconds(1))
                }
                return answers
            }
            endpoint = (group, serving, scraper)
        }
        // Timed from the first handled record, so the group join is not measured.
        while counter.handled == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let start = ContinuousClock.now
        let first = counter.handled
        while counter.handled < records { try await Task.sleep(for: .milliseconds(2)) }
        let elapsed = ContinuousClock.now - start
        if let endpoint {
            endpoint.scraper.cancel()
            let answers = try await endpoint.scraper.value
            await endpoint.group.triggerGracefulShutdown()
            try await endpoint.task.value
            print("  (\(name): \(answers) requests answered by the operations endpoint during the run)")
        }
        task.cancel()
        try await task.value
        guard counter.deadLettered == 0 else { throw ValidationError("\(name): \(counter.deadLettered) records were dead-lettered") }
        return Double(records - first) / elapsed.seconds
    }

    /// The statements Sluice runs for `record-order` events, straight on GRDB, in transactions of
    /// ``groupSize`` records made of groups of 100 (a lane's group): per group the dedupe lookups
    /// (the SQLite store looks each key up: a cached statement in the process costs less than
    /// building one with a hundred parameters), per record a savepoint, the order and two
    /// reservation upserts and the release (one savepoint around the group with `--savepoints
    /// group`), then the processed-event upserts and the group's offset; `COMMIT` per transaction. The payloads are decoded before the clock starts: this is the
    /// store's limit alone.
    private func bareSQLiteLoop(values: [[UInt8]], path: String) throws -> Double {
        var configuration = GRDB.Configuration()
        configuration.prepareDatabase { try $0.execute(sql: "PRAGMA synchronous = FULL") }
        let pool = try DatabasePool(path: path, configuration: configuration)
        let migrations = Fulfillment.migrations().map { $0.script(for: .sqlite) }
        try pool.write { database in
            try database.execute(sql: """
                CREATE TABLE sluice_processed_events (consumer_group TEXT NOT NULL, handler TEXT NOT NULL, event_id TEXT NOT NULL,
                    payload_hash TEXT NOT NULL, processed_at REAL NOT NULL, process_count INTEGER NOT NULL DEFAULT 1,
                    PRIMARY KEY (consumer_group, handler, event_id)) WITHOUT ROWID;
                CREATE INDEX sluice_processed_events_by_time ON sluice_processed_events (processed_at);
                CREATE TABLE sluice_offsets (consumer_group TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                    next_offset INTEGER NOT NULL, updated_at REAL NOT NULL, PRIMARY KEY (consumer_group, topic, partition)) WITHOUT ROWID;
                """)
            for script in migrations { try database.execute(sql: script) }
        }
        let rows = try Self.decodedRows(values, partitions: partitions)
        let perGroup = savepointScope == .group
        let start = ContinuousClock.now
        var index = 0
        while index < rows.count {
            let end = min(rows.count, index + groupSize)
            try pool.writeWithoutTransaction { database in
                try database.execute(sql: "BEGIN IMMEDIATE")
                for groupStart in stride(from: index, to: end, by: Self.laneGroup) {
                    let group = rows[groupStart..<min(end, groupStart + Self.laneGroup)]
                    for row in group {
                        _ = try GRDB.Row.fetchOne(database.cachedStatement(sql: """
                            SELECT payload_hash, processed_at, process_count FROM sluice_processed_events
                            WHERE consumer_group = ? AND handler = ? AND event_id = ?
                            """), arguments: ["bench-bare", "record-order", row.eventID])
                    }
                    if perGroup { try database.cachedStatement(sql: "SAVEPOINT sluice_1").execute() }
                    for row in group {
                        if !perGroup { try database.cachedStatement(sql: "SAVEPOINT sluice_1").execute() }
                        try database.cachedStatement(sql: Fulfillment.recordOrderSQL).execute(
                            arguments: [row.order.orderID, row.order.customerID, row.order.currency, row.order.totalMinor])
                        for item in row.order.lineItems {
                            try database.cachedStatement(sql: Fulfillment.requestReservationSQL).execute(
                                arguments: [row.order.orderID, item.sku, item.quantity])
                        }
                        if !perGroup { try database.cachedStatement(sql: "RELEASE SAVEPOINT sluice_1").execute() }
                    }
                    if perGroup { try database.cachedStatement(sql: "RELEASE SAVEPOINT sluice_1").execute() }
                    let now = Date().timeIntervalSince1970
                    for row in group {
                        _ = try Int.fetchOne(database.cachedStatement(sql: """
                            INSERT INTO sluice_processed_events (consumer_group, handler, event_id, payload_hash, processed_at, process_count)
                            VALUES (?, ?, ?, ?, ?, 1)
                            ON CONFLICT (consumer_group, handler, event_id) DO UPDATE SET
                                process_count = process_count + 1, processed_at = excluded.processed_at, payload_hash = excluded.payload_hash
                            RETURNING process_count
                            """), arguments: ["bench-bare", "record-order", row.eventID, row.hash, now])
                    }
                    try database.cachedStatement(sql: """
                        INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset, updated_at) VALUES (?, ?, ?, ?, ?)
                        ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET
                            next_offset = max(next_offset, excluded.next_offset), updated_at = excluded.updated_at
                        """).execute(arguments: ["bench-bare", "orders.events", group.last!.partition, group.endIndex, now])
                }
                try database.execute(sql: "COMMIT")
            }
            index = end
        }
        return Double(rows.count) / (ContinuousClock.now - start).seconds
    }

    static func setUp(_ statement: String, on connection: PostgresConnection, logger: Logger) async throws {
        do {
            _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger)
        } catch {
            throw ValidationError("bare PostgreSQL loop, setting up (\(statement.prefix(60))…): \(String(reflecting: error))")
        }
    }

    /// Records of one lane's group in the pipeline (`GroupCommit.maxRecords`, default 100).
    static let laneGroup = 100

    struct DecodedRow: Sendable {
        var eventID: String
        var hash: String
        var order: Fulfillment.OrderPlaced
        var partition: Int
    }

    static func decodedRows(_ values: [[UInt8]], partitions: Int) throws -> [DecodedRow] {
        let decoder = EnvelopeDecoder(registry: try SchemaRegistry(directory: Self.eventSchemas))
        return try values.enumerated().map { index, value in
            let envelope = try decoder.decode(value)
            let order = try JSONValueDecoder().decode(Fulfillment.OrderPlaced.self, from: envelope.data)
            return DecodedRow(eventID: envelope.eventID, hash: PayloadHash.of(value), order: order, partition: index % partitions)
        }
    }

    /// Whether the server behind `url` syncs its commits (`fsync`, `synchronous_commit`), for the
    /// figure's label: the test server runs with both off.
    static func fsyncSetting(_ url: String) async throws -> String {
        try await withPostgres(url, connections: 1, logger: Logger(label: "bench") { _ in SwiftLogNoOpLogHandler() }) { client in
            try await client.withConnection { connection in
                var settings: [String] = []
                for name in ["fsync", "synchronous_commit"] {
                    for try await value in try await connection.query(PostgresQuery(unsafeSQL: "SHOW \(name)"), logger: Logger(label: "bench")).decode(String.self) {
                        settings.append("\(name) = \(value)")
                    }
                }
                return settings.joined(separator: ", ")
            }
        }
    }

    /// A PostgresNIO client on `url` (host, port, user, password, database; no TLS), running
    /// while `body` does.
    static func withPostgres<T: Sendable>(
        _ url: String, connections: Int, searchPath: String? = nil, logger: Logger, _ body: (PostgresClient) async throws -> T
    ) async throws -> T {
        guard let components = URLComponents(string: url), let host = components.host, let user = components.user else {
            throw ValidationError("--postgres wants postgres://user[:password]@host[:port]/database")
        }
        var configuration = PostgresClient.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.dropFirst()), tls: .disable)
        configuration.options.maximumConnections = connections
        if let searchPath { configuration.options.additionalStartupParameters = [("search_path", searchPath)] }
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { await client.run() }
            defer { tasks.cancelAll() }
            return try await body(client)
        }
    }

    /// The statements the pipeline sends PostgreSQL for `record-order` events, straight through
    /// PostgresNIO, on as many connections as the store's pool (each running transactions of
    /// ``groupSize`` records side by side, as the store-wide group commit does): per group of 100
    /// one dedupe lookup (`UNNEST`), per record a savepoint, the order and two reservation
    /// upserts and the release (one savepoint around the group with `--savepoints group`), then
    /// one processed-event upsert for the group and its offset; `BEGIN`/`COMMIT` per transaction. Its tables are in a schema of its own
    /// (`sluice_bench_bare`, dropped and made again). The store's limit on this server.
    private func barePostgresLoop(values: [[UInt8]], url: String, logger: Logger) async throws -> Double {
        let schema = "sluice_bench_bare"
        let connections = PostgresDedupeStore.defaultPoolSize
        let rows = try Self.decodedRows(values, partitions: partitions)
        let numbered = { (sql: String) -> String in
            var count = 0
            return sql.split(separator: "?", omittingEmptySubsequences: false).enumerated().map { index, part in
                if index == 0 { return String(part) }
                count += 1
                return "$\(count)" + part
            }.joined()
        }
        let perGroup = savepointScope == .group
        let orderSQL = numbered(Fulfillment.recordOrderSQL)
        let reservationSQL = numbered(Fulfillment.requestReservationSQL)
        return try await Self.withPostgres(url, connections: connections, searchPath: schema, logger: logger) { client in
            try await client.withConnection { connection in
                for statement in [
                    "DROP SCHEMA IF EXISTS \(schema) CASCADE", "CREATE SCHEMA \(schema)",
                    """
                    CREATE TABLE \(schema).sluice_processed_events (consumer_group TEXT NOT NULL, handler TEXT NOT NULL, event_id TEXT NOT NULL,
                        payload_hash TEXT NOT NULL, processed_at TIMESTAMPTZ NOT NULL, process_count BIGINT NOT NULL DEFAULT 1,
                        PRIMARY KEY (consumer_group, handler, event_id))
                    """,
                    "CREATE INDEX ON \(schema).sluice_processed_events (processed_at)",
                    """
                    CREATE TABLE \(schema).sluice_offsets (consumer_group TEXT NOT NULL, topic TEXT NOT NULL, partition INTEGER NOT NULL,
                        next_offset BIGINT NOT NULL, updated_at TIMESTAMPTZ NOT NULL, PRIMARY KEY (consumer_group, topic, partition))
                    """,
                ] {
                    try await Self.setUp(statement, on: connection, logger: logger)
                }
                for migration in Fulfillment.migrations() {
                    for statement in migration.script(for: .postgresql).split(separator: ";") where !statement.allSatisfy(\.isWhitespace) {
                        try await Self.setUp(String(statement), on: connection, logger: logger)
                    }
                }
            }
            // Each connection takes the partitions of its own lanes, as the pipeline's
            // transactions never share a partition (a lane has one group in flight): transactions
            // that wrote the same offset rows in turn would deadlock each other.
            let start = ContinuousClock.now
            try await withThrowingTaskGroup(of: Void.self) { workers in
                for worker in 0..<connections {
                    let rows = rows.filter { $0.partition % connections == worker }
                    workers.addTask { [groupSize, perGroup] in
                        for first in stride(from: 0, to: rows.count, by: groupSize) {
                            let end = min(rows.count, first + groupSize)
                            try await client.withConnection { connection in
                                func run(_ sql: String, _ binds: PostgresBindings = PostgresBindings()) async throws {
                                    do {
                                        _ = try await connection.query(PostgresQuery(unsafeSQL: sql, binds: binds), logger: logger)
                                    } catch {
                                        throw ValidationError("bare PostgreSQL loop: \(String(reflecting: error))")
                                    }
                                }
                                try await run("BEGIN")
                                for groupStart in stride(from: first, to: end, by: Self.laneGroup) {
                                    let group = rows[groupStart..<min(end, groupStart + Self.laneGroup)]
                                    var lookup = PostgresBindings()
                                    lookup.append("bench-bare")
                                    lookup.append(Array(repeating: "record-order", count: group.count))
                                    lookup.append(group.map(\.eventID))
                                    try await run(PostgresDedupeStore.processedEventsSQL, lookup)
                                    if perGroup { try await run("SAVEPOINT sp_1") }
                                    for row in group {
                                        if !perGroup { try await run("SAVEPOINT sp_1") }
                                        var order = PostgresBindings()
                                        order.append(row.order.orderID)
                                        order.append(row.order.customerID)
                                        order.append(row.order.currency)
                                        order.append(Int64(row.order.totalMinor))
                                        try await run(orderSQL, order)
                                        for item in row.order.lineItems {
                                            var reservation = PostgresBindings()
                                            reservation.append(row.order.orderID)
                                            reservation.append(item.sku)
                                            reservation.append(Int64(item.quantity))
                                            try await run(reservationSQL, reservation)
                                        }
                                        if !perGroup { try await run("RELEASE SAVEPOINT sp_1") }
                                    }
                                    if perGroup { try await run("RELEASE SAVEPOINT sp_1") }
                                    var marks = PostgresBindings()
                                    marks.append("bench-bare")
                                    marks.append(Array(repeating: "record-order", count: group.count))
                                    marks.append(group.map(\.eventID))
                                    marks.append(group.map(\.hash))
                                    marks.append(Array(repeating: Int64(1), count: group.count))
                                    marks.append(Date())
                                    try await run(PostgresDedupeStore.markProcessedBatchSQL, marks)
                                    var offset = PostgresBindings()
                                    offset.append("bench-bare")
                                    offset.append("orders.events")
                                    offset.append(Int32(group.last!.partition))
                                    offset.append(Int64(group.endIndex))
                                    try await run("""
                                        INSERT INTO sluice_offsets (consumer_group, topic, partition, next_offset, updated_at) \
                                        VALUES ($1, $2, $3, $4, now()) ON CONFLICT (consumer_group, topic, partition) DO UPDATE SET \
                                        next_offset = GREATEST(sluice_offsets.next_offset, EXCLUDED.next_offset), updated_at = EXCLUDED.updated_at
                                        """, offset)
                                }
                                try await run("COMMIT")
                            }
                        }
                    }
                }
                try await workers.waitForAll()
            }
            return Double(rows.count) / (ContinuousClock.now - start).seconds
        }
    }

    /// Records produced at ``latencyRate`` while an order-fulfillment consumer on SQLite runs;
    /// each record's latency runs from its timestamp (set when it was produced) to the commit of
    /// the store transaction that handled it.
    private func produceToHandledLatency(
        cluster: EmbeddedKafkaCluster, directory: URL, registry: SchemaRegistry, logger: Logger
    ) async throws -> (p50: Double, p99: Double, p999: Double) {
        let topic = "orders.latency"
        try cluster.createTopic(topic, partitions: partitions)
        let store = CommitTimedStore(base: SQLDedupeStore.sqlite(try await SQLiteDedupeStore.open(
            path: directory.appendingPathComponent("latency.sqlite").path, migrations: Fulfillment.migrations(), logger: logger)))
        var router = EventRouter<SQLDedupeStore.Transaction>()
        router.on("orders.order_placed", as: Fulfillment.OrderPlaced.self, handler: "record-order") { event, context in
            try await Fulfillment.recordOrder(event.payload, in: context.transaction)
            PendingTimes.handled(producedAtMilliseconds: context.record.timestamp?.milliseconds)
        }
        var consumer = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "bench-latency")
        consumer.properties["auto.offset.reset"] = "earliest"
        // The embedded broker holds a fetch that finds no data for the whole fetch.wait.max.ms
        // (500 ms by default) even when records arrive meanwhile (librdkafka's mock handler says
        // so: it cannot cut the wait short); a real broker answers as soon as fetch.min.bytes
        // (1) are there. A short wait stands in for that, or the figure would be the mock's.
        consumer.properties["fetch.wait.max.ms"] = "5"
        let service = try EventConsumer(
            configuration: .init(consumer: consumer, topics: [topic]), decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: router, store: store,
            deadLetterSink: try KafkaDeadLetterSink(producer: KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)),
            logger: logger)
        let task = Task { try await service.run() }
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
        // Steady state only: one record per partition first, and the clock starts once all of
        // them are handled (the group formed, every partition assigned and fetching). Timed from
        // the start, the first second's records measured the group's join, not the pipeline.
        for partition in 0..<partitions {
            try await producer.enqueue(ProducerRecord(
                topic: topic, partition: Int32(partition), key: Array("warm_\(partition)".utf8),
                value: Self.orderPlaced(records + latencyRecords + partition))) { result in
                if case .failure(let error) = result { fatalError("benchmark data could not be produced: \(error)") }
            }
        }
        try await producer.flush(timeout: .seconds(60))
        while store.latencies.count < partitions { try await Task.sleep(for: .milliseconds(10)) }
        store.reset()
        let start = ContinuousClock.now
        let interval = Duration.seconds(1) / latencyRate
        for index in 0..<latencyRecords {
            let due = start + interval * index
            if due > .now { try await Task.sleep(until: due, clock: .continuous) }
            try await producer.enqueue(ProducerRecord(
                topic: topic, partition: Int32(index % partitions), key: Array("ord_\(index)".utf8),
                value: Self.orderPlaced(records + index))) { result in
                if case .failure(let error) = result { fatalError("benchmark data could not be produced: \(error)") }
            }
        }
        try await producer.flush(timeout: .seconds(60))
        while store.latencies.count < latencyRecords { try await Task.sleep(for: .milliseconds(10)) }
        task.cancel()
        try await task.value
        let sorted = store.latencies.sorted()
        func percentile(_ p: Double) -> Double { sorted[min(sorted.count - 1, Int(Double(sorted.count) * p))] }
        return (percentile(0.50), percentile(0.99), percentile(0.999))
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) / 1e18 }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        count >= width ? self : String(repeating: "0", count: width - count) + self
    }
}

/// `VmRSS` and `VmHWM` of this process, in KiB.
enum ResidentMemory {
    static func read() -> (current: Int, peak: Int) {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return (0, 0) }
        func field(_ name: String) -> Int {
            for line in status.split(separator: "\n") where line.hasPrefix(name) {
                return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0
            }
            return 0
        }
        return (field("VmRSS:"), field("VmHWM:"))
    }
}

/// Production times (ms since the epoch) that handlers reported in the current transaction.
final class PendingTimes: Sendable {
    @TaskLocal static var current: PendingTimes?
    let times = Mutex<[Int64]>([])

    static func handled(producedAtMilliseconds: Int64?) {
        guard let producedAtMilliseconds, let current else { return }
        current.times.withLock { $0.append(producedAtMilliseconds) }
    }
}

/// A store that notes, when a transaction commits, how long ago each record its handlers
/// reported was produced.
final class CommitTimedStore<Base: DedupeStore>: DedupeStore {
    typealias Transaction = Base.Transaction

    private let base: Base
    private let measured = Mutex<[Double]>([])

    init(base: Base) { self.base = base }

    /// Latencies in milliseconds, one per committed record.
    var latencies: [Double] { measured.withLock { $0 } }

    /// Forgets the latencies measured so far.
    func reset() { measured.withLock { $0.removeAll() } }

    func withTransaction<T: Sendable>(_ body: (Base.Transaction) async throws -> T) async throws -> T {
        let pending = PendingTimes()
        let result = try await PendingTimes.$current.withValue(pending) { try await base.withTransaction(body) }
        let now = Int64(Date().timeIntervalSince1970 * 1_000)
        let committed = pending.times.withLock { $0 }
        measured.withLock { $0.append(contentsOf: committed.map { Double(now - $0) }) }
        return result
    }

    func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
        try await base.storedOffsets(group: group, partitions: partitions)
    }

    func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
        try await base.pruneProcessedEvents(olderThan: cutoff)
    }
}

/// A metrics factory that counts `sluice.records.handled` and `sluice.records.dead_lettered`
/// and drops everything else: the benchmark's way to know when every record is durable.
final class HandledMetrics: MetricsFactory, Sendable {
    private let handledCount = Atomic<Int>(0)
    private let deadLetteredCount = Atomic<Int>(0)

    var handled: Int { handledCount.load(ordering: .relaxed) }
    var deadLettered: Int { deadLetteredCount.load(ordering: .relaxed) }

    private final class Count: CounterHandler, Sendable {
        let target: (@Sendable (Int64) -> Void)?
        init(_ target: (@Sendable (Int64) -> Void)?) { self.target = target }
        func increment(by amount: Int64) { target?(amount) }
        func reset() {}
    }

    private final class Ignored: RecorderHandler, TimerHandler, FloatingPointCounterHandler, Sendable {
        func record(_ value: Int64) {}
        func record(_ value: Double) {}
        func recordNanoseconds(_ duration: Int64) {}
        func increment(by amount: Double) {}
        func reset() {}
    }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        switch label {
        case "sluice.records.handled":
            Count { [self] in self.handledCount.add(Int($0), ordering: .relaxed) }
        case "sluice.records.dead_lettered":
            Count { [self] in self.deadLetteredCount.add(Int($0), ordering: .relaxed) }
        default:
            Count(nil)
        }
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler { Ignored() }
    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler { Ignored() }
    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler { Ignored() }
    func destroyCounter(_ handler: any CounterHandler) {}
    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {}
    func destroyRecorder(_ handler: any RecorderHandler) {}
    func destroyTimer(_ handler: any TimerHandler) {}
}
