import ArgumentParser
import Foundation
import Sluice
import SluiceKafka

/// `sluice lag --group G`: how far a consumer group is behind, per partition.
struct LagCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lag",
        abstract: "A consumer group's committed offsets, the high watermarks, and the lag per partition.",
        discussion: """
            Without --topic, every topic the cluster lists is checked and those the group committed to are shown. \
            A committed offset above the high watermark is shown as `lag ?` with a warning (the topic was truncated \
            or recreated, or the broker's answer is wrong) and is left out of the total.
            """)

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
        var beyond: [TopicPartition] = []
        print("group \(group)")
        for partition in partitions.sorted() {
            let offset = committed[partition] ?? .invalid
            if topic.isEmpty && !offset.isConcrete { continue }
            let (_, high) = try await consumer.watermarks(for: partition)
            shown += 1
            let committedText = offset.isConcrete ? String(offset.rawValue) : "none"
            if offset.isConcrete && offset > high {
                // No lag can be computed: the commit points past the partition's end. The records
                // it counted are gone (the topic was truncated or deleted and recreated), or the
                // broker's watermark is wrong. Either way it is not "lag 0".
                beyond.append(partition)
                print("  \(partition): committed \(committedText), high watermark \(high.rawValue), lag ? (committed offset is past the high watermark)")
                continue
            }
            let lag = offset.isConcrete ? high.rawValue - offset.rawValue : high.rawValue
            total += lag
            print("  \(partition): committed \(committedText), high watermark \(high.rawValue), lag \(lag)")
        }
        try? await consumer.close()
        let unknown = beyond.isEmpty ? "" : " (\(beyond.count) with lag ? not counted)"
        print("total lag \(total) over \(shown) partition(s)\(unknown)")
        if !beyond.isEmpty {
            let names = beyond.map(\.description).joined(separator: ", ")
            FileHandle.standardError.write(Data("""
                warning: group \(group) committed offsets past the high watermark of \(names): the topic was probably \
                truncated (records deleted) or deleted and recreated, or the broker reports a wrong high watermark. \
                A consumer of the group resuming there finds its offset out of range and starts where \
                auto.offset.reset says (records may be skipped or read twice); check the topic, and reset the group's \
                offsets deliberately.

                """.utf8))
        }
    }
}
