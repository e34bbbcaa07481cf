import ArgumentParser
import Foundation
import Sluice
import SluiceKafka

/// `sluice lag --group G`: how far a consumer group is behind, per partition.
struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "A consumer group's committed offsets, the high watermarks, and the lag per partition.",
        discussion: "Without --topic, every topic the cluster lists is checked and those the group committed to are shown.")

    @OptionGroup var kafka: KafkaOptions
    @Option(help: "The consumer group.") var group: String
    @Option(help: "A topic to check (repeatable).") var topic: [String] = []

    func run() async throws {
        let logger = KafkaOptions.logger("sluice.lag")
        let admin = try KafkaAdmin(bootstrapServers: kafka.servers, properties: kafka.librdkafka, logger: logger)
        let counts = try await admin.listTopics()
        let topics = topic.isEmpty ? counts.keys.sorted() : topic
        var partitions: [TopicPartition] = []
        for name in topics {
            guard let count = counts[name] else { throw ValidationError("topic \(name) does not exist") }
            partitions += (0..<Int32(count)).map { TopicPartition(topic: name, partition: $0) }
        }
        var configuration = KafkaConsumerConfiguration(bootstrapServers: kafka.servers, groupID: group)
        for (name, value) in kafka.librdkafka { configuration.properties[name] = value }
        // Never subscribes: it only asks the group coordinator for the group's commits.
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        let committed = try await consumer.committedOffsets(for: partitions)
        var total: Int64 = 0
        var shown = 0
        print("group \(group)")
        for partition in partitions.sorted() {
            let offset = committed[partition] ?? .invalid
            if topic.isEmpty && !offset.isConcrete { continue }
            let (_, high) = try await consumer.watermarks(for: partition)
            let lag = offset.isConcrete ? max(0, high.rawValue - offset.rawValue) : high.rawValue
            total += lag
            shown += 1
            print("  \(partition): committed \(offset.isConcrete ? String(offset.rawValue) : "none"), high watermark \(high.rawValue), lag \(lag)")
        }
        try? await consumer.close()
        print("total lag \(total) over \(shown) partition(s)")
    }
}
