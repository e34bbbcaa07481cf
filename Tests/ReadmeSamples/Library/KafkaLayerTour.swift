// README.md's Kafka-layer and configuration samples (ReadmeSampleTests checks their lines appear here in order): compiled here.

import Logging
import Sluice
import SluiceKafka

/// The README's tour, inside a function so that it compiles as a library.
func kafkaLayerTour(listener: some KafkaRebalanceListener, handle: (Record) async throws -> Void) async throws {
    func nextOffsets(after batch: [Record]) -> [TopicPartition: Offset] {
        var offsets: [TopicPartition: Offset] = [:]
        for record in batch { offsets[record.topicPartition] = record.offset.next }
        return offsets
    }

    let logger = Logger(label: "billing-consumer")

    // A local cluster for tests and development (librdkafka's mock cluster on loopback).
    let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: logger)
    try cluster.createTopic("payments", partitions: 6)

    // `send` returns only when the broker acknowledged the record.
    let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
    let report = try await producer.send(ProducerRecord(topic: "payments", key: Array("cust_1".utf8), value: Array("{}".utf8)))

    // A group consumer with manual commits. The rebalance listener hears about revocations in time
    // to finish in-flight work and commit before the partitions go to another member.
    var configuration = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "billing")
    configuration.properties["fetch.wait.max.ms"] = "50"          // any librdkafka property passes through
    let consumer = try KafkaConsumer(configuration: configuration, rebalanceListener: listener, logger: logger)
    try await consumer.subscribe(["payments"])
    for try await batch in consumer.batches {                     // offset order per partition
        for record in batch { try await handle(record) }
        try await consumer.commit(nextOffsets(after: batch))      // commit only what has an outcome
    }
    _ = report
}

/// The README's security configuration.
func securityConfiguration(secret: String) -> KafkaConsumerConfiguration {
    var configuration = KafkaConsumerConfiguration(bootstrapServers: ["kafka-1:9093"], groupID: "billing")
    configuration.properties["security.protocol"] = "SASL_SSL"
    configuration.properties["sasl.mechanisms"] = "SCRAM-SHA-512"
    configuration.properties["sasl.username"] = "billing"
    configuration.properties["sasl.password"] = secret   // never logged
    return configuration
}
