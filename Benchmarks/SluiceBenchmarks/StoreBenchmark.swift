import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceKafka
import SluiceSQLite
import Synchronization

/// The full pipeline (Kafka → decode → lanes → handler in a store transaction → commits) with the
/// in-memory store, SQLite with group commit, and PostgreSQL, on the same records.
struct StoreBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stores",
        abstract: "Records/s of the full pipeline with the in-memory store vs SQLite vs PostgreSQL on the same topic.")

    @Option(help: "Events to produce and handle.") var records = 100_000
    @Option(help: "Partitions (the embedded broker keeps ~5 MB per partition).") var partitions = 16
    @Option(help: "A postgres:// URL of an empty database, to include PostgreSQL.") var postgres: String?
    @Option(help: "Records per group commit (1 = a transaction per record).") var groupCommit = 100
    @Flag(help: "SQLite with synchronous = NORMAL (a commit survives a process crash, not a power loss).") var sqliteNormalSync = false

    static let schema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["account","amount"],
         "properties":{"account":{"type":"string"},"amount":{"type":"integer"}}}
        """#

    func run() async throws {
        var logger = Logger(label: "sluice.benchmarks") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        try cluster.createTopic("postings", partitions: partitions)
        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
        for index in 0..<records {
            let account = index % (partitions * 4)
            let value = #"{"event_id":"e\#(index)","event_type":"ledger.amount_posted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"bench","correlation_id":"c\#(index)","causation_id":"cause-\#(index)","subject":"account:\#(account)","data":{"account":"acct-\#(account)","amount":\#(index % 1000)}}"#
            try await producer.enqueue(
                ProducerRecord(topic: "postings", partition: Int32(account % partitions), key: Array("acct-\(account)".utf8), value: Array(value.utf8))
            ) { result in
                if case .failure(let error) = result { fatalError("benchmark data could not be produced: \(error)") }
            }
        }
        try await producer.flush(timeout: .seconds(120))
        try await producer.close()
        print("\(records) events over \(partitions) partitions; group commit \(groupCommit) records; one balance upsert per event")

        var registry = SchemaRegistry()
        try registry.register(eventType: "ledger.amount_posted", version: 1, schemaText: Self.schema)
        struct Posting: Decodable, Sendable { var account: String; var amount: Int }

        // In memory: the handler keeps the balance in the store's key-value space.
        let memoryStore = InMemoryDedupeStore()
        var memoryRouter = EventRouter<InMemoryDedupeStore.Transaction>()
        let memoryCount = HandledCount()
        memoryRouter.on("ledger.amount_posted", as: Posting.self, handler: "balances") { event, context in
            var total = event.payload.amount
            if case .string(let text) = context.transaction.value(forKey: event.payload.account) { total += Int(text) ?? 0 }
            context.transaction.setValue(.string(String(total)), forKey: event.payload.account)
            memoryCount.value.add(1, ordering: .relaxed)
        }
        let memory = try await measure(
            "in-memory", cluster: cluster, registry: registry, store: memoryStore, router: memoryRouter, handled: memoryCount, logger: logger)

        let balances = [StoreMigration(id: "balances-1", sql: "CREATE TABLE balances (account TEXT PRIMARY KEY, amount BIGINT NOT NULL)")]
        func sqlRouter(_ count: HandledCount) -> EventRouter<SQLDedupeStore.Transaction> {
            var router = EventRouter<SQLDedupeStore.Transaction>()
            router.on("ledger.amount_posted", as: Posting.self, handler: "balances") { event, context in
                try await context.transaction.execute(
                    "INSERT INTO balances (account, amount) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET amount = balances.amount + excluded.amount",
                    [.text(event.payload.account), SQLValue(event.payload.amount)])
                count.value.add(1, ordering: .relaxed)
            }
            return router
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-bench-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var sqliteConfiguration = SQLiteDedupeStore.Configuration()
        sqliteConfiguration.synchronousCommits = !sqliteNormalSync
        let sqliteStore = SQLDedupeStore.sqlite(try await SQLiteDedupeStore.open(
            path: directory.appendingPathComponent("bench.sqlite").path, migrations: balances, configuration: sqliteConfiguration, logger: logger))
        let sqliteCount = HandledCount()
        let sqlite = try await measure(
            "SQLite", cluster: cluster, registry: registry, store: sqliteStore, router: sqlRouter(sqliteCount), handled: sqliteCount, logger: logger)
        print(String(format: "SQLite / in-memory: %.2f (target >= 0.50)", sqlite / memory))

        if let postgres {
            let postgresStore = try await SQLDedupeStore.open(.postgres(url: postgres), migrations: balances, logger: logger)
            let postgresCount = HandledCount()
            let rate = try await measure(
                "PostgreSQL", cluster: cluster, registry: registry, store: postgresStore, router: sqlRouter(postgresCount),
                handled: postgresCount, logger: logger)
            await postgresStore.close()
            print(String(format: "PostgreSQL / in-memory: %.2f", rate / memory))
        }
    }

    /// Runs an EventConsumer (its own group, from the beginning) until every event was handled.
    private func measure<Store: DedupeStore>(
        _ name: String, cluster: EmbeddedKafkaCluster, registry: SchemaRegistry, store: Store,
        router: EventRouter<Store.Transaction>, handled: HandledCount, logger: Logger
    ) async throws -> Double {
        var consumer = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "bench-\(name)")
        consumer.properties["auto.offset.reset"] = "earliest"
        var configuration = EventConsumer<Store>.Configuration(consumer: consumer, topics: ["postings"])
        configuration.pipeline.groupCommit.maxRecords = groupCommit
        configuration.dispatcher.maxBatch = groupCommit
        let sink = try KafkaDeadLetterSink(producer: KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger))
        let service = try EventConsumer(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: try UpcasterChain(registry: registry),
            router: router, store: store, deadLetterSink: sink, logger: logger)
        let task = Task { try await service.run() }
        // Timed from the first handled event, so the group join is not measured.
        while handled.value.load(ordering: .relaxed) == 0 { try await Task.sleep(for: .milliseconds(1)) }
        let start = ContinuousClock.now
        let first = handled.value.load(ordering: .relaxed)
        while handled.value.load(ordering: .relaxed) < records { try await Task.sleep(for: .milliseconds(5)) }
        let elapsed = ContinuousClock.now - start
        task.cancel()
        try await task.value
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        let rate = Double(records - first) / seconds
        print(String(format: "%@: %.0f events/s", name, rate))
        return rate
    }
}

/// Handler calls, counted across lanes.
final class HandledCount: Sendable {
    let value = Atomic<Int>(0)
}
