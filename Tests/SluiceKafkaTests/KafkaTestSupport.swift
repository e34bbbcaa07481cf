import Foundation
import Logging
import Sluice
import SluiceKafka
import Synchronization
import Testing

/// Shared pieces of the Kafka tests: loggers, clusters, producing and collecting with deadlines.
enum KafkaTestSupport {
    /// Warnings and worse go to standard error, so a failing test shows what librdkafka said.
    static let logger: Logger = {
        var logger = Logger(label: "sluice.tests") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        return logger
    }()

    struct TimedOut: Error, CustomStringConvertible {
        var what: String
        var description: String { "timed out waiting for \(what)" }
    }

    static func cluster(brokers: Int = 1, topics: [String: Int]) throws -> EmbeddedKafkaCluster {
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        for (name, partitions) in topics { try cluster.createTopic(name, partitions: partitions) }
        return cluster
    }

    static func producer(_ cluster: EmbeddedKafkaCluster, configure: (inout KafkaProducerConfiguration) -> Void = { _ in }) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(bootstrapServers: [cluster.bootstrapServers])
        configure(&configuration)
        return try KafkaProducer(configuration: configuration, logger: logger)
    }

    static func consumerConfiguration(
        _ cluster: EmbeddedKafkaCluster, group: String?
    ) -> KafkaConsumerConfiguration {
        var configuration = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: group)
        configuration.sessionTimeout = .seconds(6)
        configuration.properties["heartbeat.interval.ms"] = "300"
        configuration.properties["topic.metadata.refresh.interval.ms"] = "1000"
        return configuration
    }

    /// Produces `records` and waits for every delivery report; fails on the first failed delivery.
    @discardableResult
    static func produceAll(_ producer: KafkaProducer, _ records: [ProducerRecord]) async throws -> [DeliveryReport] {
        let reports = Reports()
        for (index, record) in records.enumerated() {
            try await producer.enqueue(record) { result in reports.set(index, result) }
        }
        try await producer.flush(timeout: .seconds(60))
        return try reports.all(count: records.count)
    }

    /// Takes batches until `done` says so, failing after `timeout` without it.
    static func collect(
        from consumer: KafkaConsumer,
        timeout: Duration = .seconds(60),
        what: String = "records",
        until done: @escaping @Sendable ([Record]) -> Bool
    ) async throws -> [Record] {
        try await withThrowingTaskGroup(of: [Record]?.self) { group in
            group.addTask {
                var collected: [Record] = []
                for try await batch in consumer.batches {
                    collected += batch
                    if done(collected) { return collected }
                }
                return collected
            }
            group.addTask {
                try await Task.sleep(for: timeout)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let records = first else { throw TimedOut(what: what) }
            return records
        }
    }

    /// Polls `condition` every 50 ms until it holds, failing after `timeout`.
    static func eventually(
        _ what: String, timeout: Duration = .seconds(30), _ condition: @Sendable () async throws -> Bool
    ) async throws {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(50))
        }
        throw TimedOut(what: what)
    }

    static func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }
}

/// Delivery results gathered from librdkafka's thread.
final class Reports: Sendable {
    private let results = Mutex<[Int: Result<DeliveryReport, KafkaError>]>([:])

    func set(_ index: Int, _ result: Result<DeliveryReport, KafkaError>) {
        results.withLock { $0[index] = result }
    }

    func all(count: Int) throws -> [DeliveryReport] {
        try results.withLock { results in
            try (0..<count).map { index in
                guard let result = results[index] else { throw KafkaTestSupport.TimedOut(what: "delivery report \(index)") }
                return try result.get()
            }
        }
    }
}
