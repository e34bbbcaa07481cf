import Foundation
import Logging
import Sluice
import SluiceKafka
import Testing

@Suite("librdkafka handles live exactly as long as their owners", .serialized)
struct KafkaLifecycleTests {
    typealias Support = KafkaTestSupport

    @Test("Every librdkafka client is destroyed once its owner is gone, closed or not")
    func noHandleOutlivesItsOwner() async throws {
        // Tests run one at a time, so this also catches any handle an earlier test leaked.
        #expect(await KafkaLibrary.allClientsDestroyed(within: .seconds(20)), "a client from an earlier test is still alive")
        do {
            let cluster = try Support.cluster(brokers: 2, topics: ["lifecycle": 2])
            let producer = try Support.producer(cluster)
            try await Support.produceAll(producer, (0..<100).map { ProducerRecord(topic: "lifecycle", value: Support.bytes("l\($0)")) })
            let admin = try KafkaAdmin(bootstrapServers: [cluster.bootstrapServers], logger: Support.logger)
            _ = try await admin.listTopics()

            // One consumer closed properly, one dropped while running, one that never read anything.
            let closed = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "lifecycle"), logger: Support.logger)
            try await closed.subscribe(["lifecycle"])
            _ = try await Support.collect(from: closed, what: "the group member's 100 records") { $0.count >= 100 }
            try await closed.close()
            let dropped = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
            try await dropped.assign([TopicPartition(topic: "lifecycle", partition: 0): .beginning])
            _ = try await Support.collect(from: dropped, what: "a first record for the group-less consumer") { !$0.isEmpty }
            _ = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "idle"), logger: Support.logger)
            // A producer dropped with a record in flight.
            // Its record may never be delivered once the cluster is gone: it fails after the flush timeout.
            let unflushed = try Support.producer(cluster) { $0.flushTimeout = .seconds(2) }
            try await unflushed.enqueue(ProducerRecord(topic: "lifecycle", value: Support.bytes("late"))) { _ in }
            try await producer.close()
        }
        #expect(await KafkaLibrary.allClientsDestroyed(within: .seconds(30)), "a librdkafka client outlived its owner")
    }
}
