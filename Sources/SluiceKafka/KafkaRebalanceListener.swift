import Sluice

/// Hears about partitions a group consumer gains and loses, in time to act before it happens.
///
/// The consumer calls these from its poll thread and waits for them to return before it completes
/// the rebalance, so the layer above can finish in-flight work and commit before a partition is
/// given up, and can choose where an assigned partition starts.
///
/// - Important: The consumer holds its listener strongly. A listener that needs the consumer (to
///   commit) must hold it weakly, or neither is ever freed and the librdkafka handle leaks.
/// - Important: While a callback runs, the consumer still executes ``KafkaConsumer/pause(_:)``,
///   ``KafkaConsumer/resume(_:)``, ``KafkaConsumer/seek(_:)`` and commits, but delivers no records.
///   A callback that takes longer than `max.poll.interval.ms` makes the member leave the group.
public protocol KafkaRebalanceListener: Sendable {
    /// Partitions are being assigned.
    ///
    /// - Returns: Start offsets for partitions that must not start at the group's committed
    ///   offset (for example a dedupe store that is ahead of Kafka after a crash).
    func partitionsAssigned(_ partitions: [TopicPartition]) async -> [TopicPartition: Offset]

    /// Partitions are being revoked. Records of these partitions that were fetched but not yet
    /// taken from ``KafkaConsumer/batches`` have already been dropped; they will be delivered to the
    /// next owner from the committed offset.
    ///
    /// - Parameters:
    ///   - partitions: The partitions that are being revoked.
    ///   - lost: `true` when the group already gave the partitions to another member (a session
    ///     timeout): committing for them will fail and must not be attempted.
    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) async
}
