import Foundation
import Logging
import Sluice
import SluiceKafka

/// An embedded Kafka cluster with topics, for a service's integration tests: start it, produce
/// envelopes or recorded records, point the service at ``bootstrapServers``, close it.
///
/// ```swift
/// let broker = try EmbeddedBrokerFixture(topics: ["billing.payments": 3])
/// try await broker.produce(envelopes: [paymentJSON], to: "billing.payments")
/// // … run the service with --bootstrap-servers broker.bootstrapServers …
/// await broker.close()
/// ```
public final class EmbeddedBrokerFixture: Sendable {
    /// The cluster (fault injection, more topics).
    public let cluster: EmbeddedKafkaCluster
    private let producer: KafkaProducer

    /// Starts a cluster (`brokers` brokers) and creates `topics` (name → partitions).
    public init(topics: [String: Int], brokers: Int = 1, logger: Logger = Logger(label: "sluice.fixture") { _ in SwiftLogNoOpLogHandler() }) throws {
        cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        for (name, partitions) in topics { try cluster.createTopic(name, partitions: partitions) }
        producer = try KafkaProducer(configuration: KafkaProducerConfiguration(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
    }

    /// `host:port` of the cluster's brokers.
    public var bootstrapServers: String { cluster.bootstrapServers }

    /// Produces envelope JSON texts to `topic` (partition chosen by `key`, or `partition`), and
    /// waits until the broker acknowledged every one.
    public func produce(envelopes: [String], to topic: String, key: String? = nil, partition: Int32? = nil) async throws {
        try await produce(envelopes.map { ProducerRecord(topic: topic, partition: partition, key: key.map { Array($0.utf8) }, value: Array($0.utf8)) })
    }

    /// Produces recorded records (a snapshot's, for instance) to `topic`, keeping each record's
    /// key, headers, value and timestamp, and its partition when `keepPartitions` is set.
    public func produce(records: [Record], to topic: String, keepPartitions: Bool = true) async throws {
        try await produce(records.map { record in
            var produced = ProducerRecord(
                topic: topic, partition: keepPartitions ? record.partition : nil, key: record.key, value: record.value, headers: record.headers)
            produced.timestampMilliseconds = record.timestamp?.milliseconds
            return produced
        })
    }

    private func produce(_ records: [ProducerRecord]) async throws {
        // Queued in order, so each partition receives its records in the order given.
        for result in await producer.send(records) { _ = try result.get() }
    }

    /// Closes the fixture's producer; the cluster stops when the fixture is released.
    public func close() async {
        try? await producer.close()
    }
}
