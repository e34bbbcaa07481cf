import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import CoreMetrics
import Sluice
import SluiceHTTP
import SluiceKafka
import UnixSignals

/// `run`: consume the service's topics until SIGTERM or SIGINT, then drain, commit and leave.
public struct RunCommand<Definition: ConsumerServiceDefinition>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "run",
            abstract: "Consume events: ordered per partition, handlers in the dedupe store, poison records to the dead-letter topic.")
    }

    @Option(name: .customLong("bootstrap-servers"), help: "Kafka brokers, host:port[,host:port…].")
    var bootstrapServers: String

    @Option(name: .customLong("topic"), help: "A topic to consume (repeatable).")
    var topics: [String]

    @Option(help: "The consumer group.")
    var group: String

    @Option(help: "The dedupe store: a SQLite file path or a postgres:// URL.")
    var database: String

    @Option(name: .customLong("dead-letter-topic"), help: "One dead-letter topic for every consumed topic (default: <topic>.DLT).")
    var deadLetterTopic: String?

    @Option(name: .customLong("schemas"), help: "The EventSchemas directory.")
    var schemasDirectory: String?

    @Option(name: [.customShort("X"), .customLong("property")], help: "A librdkafka property, NAME=VALUE (repeatable).")
    var properties: [String] = []

    @Option(name: .customLong("shutdown-timeout"), help: "Seconds to drain on SIGTERM before stopping.")
    var shutdownTimeout: Int = 30

    @Option(name: .customLong("lane-capacity"), help: "Records one partition's lane may hold before the partition is paused.")
    var laneCapacity: Int = 1_000

    @Option(name: .customLong("buffered-records"), help: "Records fetched but not yet dispatched, above which fetching pauses.")
    var bufferedRecords: Int = 20_000

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(name: .customLong("on-poison"), help: "dead-letter (default): dead-letter and move on; park: dead-letter and park the record's key, holding its later records in the store until `parked release`. TOPIC=POLICY sets one topic's (repeatable).")
    var onPoison: [String] = []

    @Option(name: .customLong("park-by"), help: "key (default) or subject: what orders events, so what --on-poison park parks.")
    var parkBy: String = "key"

    @OptionGroup var operations: OperationsOptions

    public init() {}

    public func validate() throws {
        guard !topics.isEmpty else { throw ValidationError("give at least one --topic") }
        for property in properties where !property.contains("=") {
            throw ValidationError("--property takes NAME=VALUE, got '\(property)'")
        }
        guard laneCapacity >= 1, bufferedRecords >= 1 else { throw ValidationError("--lane-capacity and --buffered-records must be at least 1") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        _ = try poisonPolicy()
        guard Parking.Scope(rawValue: parkBy) != nil else { throw ValidationError("--park-by is key or subject, not '\(parkBy)'") }
    }

    /// `--on-poison` as a ``Parking``: `dead-letter` or `park` for every topic, `TOPIC=…` for one.
    func poisonPolicy() throws -> Parking {
        var parking = Parking(scope: Parking.Scope(rawValue: parkBy) ?? .key)
        func mode(_ text: Substring) throws -> Parking.Mode {
            switch text {
            case "dead-letter": return .off
            case "park": return .park
            default: throw ValidationError("--on-poison is dead-letter or park (or TOPIC=dead-letter|park), not '\(text)'")
            }
        }
        for value in onPoison {
            if let equals = value.firstIndex(of: "=") {
                parking.topics[String(value[..<equals])] = try mode(value[value.index(after: equals)...])
            } else {
                parking.mode = try mode(value[...])
            }
        }
        return parking
    }

    public func run() async throws {
        let logger = operations.format.logger(label: "sluice.run", level: Logger.Level(rawValue: logLevel) ?? .info)
        // The endpoint's metrics are the service's own registry, handed to the consumer rather
        // than bootstrapped: a service that bootstrapped its own backend keeps it (both are fed),
        // and nothing here depends on being the process's only service.
        let endpoint = try operations.address().map { (address: $0, metrics: PrometheusMetrics()) }

        let registry = try SchemaRegistry(directory: schemasDirectory ?? Definition.schemasDirectory)
        let upcasters = try UpcasterChain(registry: registry, upcasters: Definition.upcasters())
        let store = try await Definition.openStore(database: database, logger: logger)

        var consumer = KafkaConsumerConfiguration(
            bootstrapServers: bootstrapServers.split(separator: ",").map(String.init), groupID: group)
        var producer = KafkaProducerConfiguration(bootstrapServers: consumer.bootstrapServers)
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            consumer.properties[parts[0]] = parts[1]
            // Security settings apply to the dead-letter producer too; consumer-only ones do not.
            if parts[0].hasPrefix("security.") || parts[0].hasPrefix("sasl.") || parts[0].hasPrefix("ssl.") {
                producer.properties[parts[0]] = parts[1]
            }
        }
        consumer.maxBufferedRecords = bufferedRecords
        var configuration = EventConsumer<Definition.Store>.Configuration(consumer: consumer, topics: topics)
        configuration.shutdownTimeout = .seconds(shutdownTimeout)
        configuration.dispatcher.laneCapacity = laneCapacity
        configuration.dispatcher.resumeBelow = max(1, laneCapacity / 4)
        if let deadLetterTopic {
            for topic in topics { configuration.pipeline.deadLetters.topics[topic] = deadLetterTopic }
        }
        let policy = try poisonPolicy()
        if policy.mode == .park || policy.topics.values.contains(.park) {
            configuration.pipeline.parking = policy
            // Refused at start, not at the first poison record: a store without parking.
            let parked = try await store.withTransaction { [group = self.group] in try await $0.parkedKeys(group: group, topic: nil) }
            if !parked.isEmpty {
                logger.warning("keys are parked; their records wait for `parked release`", metadata: [
                    "parked.keys": "\(parked.count)",
                    "keys": "\(parked.prefix(10).map { "\($0.topic) \($0.key)" }.joined(separator: ", "))",
                ])
            }
        }
        // Every dead letter whose record has an outcome was acknowledged before the outcome, so
        // what the producer still holds at close belongs to records abandoned at shutdown (a
        // halted partition's letter), which are delivered again: nothing to wait 30 s for.
        producer.flushTimeout = .seconds(1)
        let deadLetterProducer = try KafkaProducer(configuration: producer, logger: logger)
        let service = try EventConsumer(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry), upcasters: upcasters,
            router: Definition.router(), store: store, deadLetterSink: KafkaDeadLetterSink(producer: deadLetterProducer),
            logger: logger, metricsFactory: endpoint.map { $0.metrics.factory(alongside: MetricsSystem.factory) } ?? MetricsSystem.factory)
        var services: [any Service] = [service]
        if let endpoint {
            // First in the list, so it is shut down last: it answers (ready: 503) while the consumer drains.
            services.insert(
                OperationsEndpoint(
                    address: endpoint.address, source: ConsumerOperationsSource(consumer: service), metrics: endpoint.metrics,
                    logger: logger),
                at: 0)
        }
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        try await group.run()
        do {
            try await deadLetterProducer.close()
        } catch {
            // Only letters of records left without an outcome can still be in the producer (see
            // above): those records are delivered again after the restart, so nothing is lost.
            logger.notice("the dead-letter producer closed with undelivered letters of records left without an outcome; they are dead-lettered again after a restart", metadata: ["error": "\(error)"])
        }
    }
}
