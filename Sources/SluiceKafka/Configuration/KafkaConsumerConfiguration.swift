import Foundation

/// How a ``KafkaConsumer`` connects, joins its group and fetches.
///
/// Every field maps to a librdkafka property; ``properties`` passes any other librdkafka property
/// through unchanged and wins over the typed fields. An unknown property name fails when the
/// consumer is created, with the name in the error.
public struct KafkaConsumerConfiguration: Sendable, CustomStringConvertible {
    /// Where a partition with no committed offset starts.
    public enum AutoOffsetReset: String, Sendable {
        case earliest, latest
        /// Fail with an error instead of guessing.
        case error
    }

    /// How partitions are spread over the group's members.
    public enum AssignmentStrategy: String, Sendable {
        /// Incremental (KIP-429) rebalancing: members keep the partitions they still own.
        case cooperativeSticky = "cooperative-sticky"
        /// Eager rebalancing: every member gives up everything, then gets a new share.
        case range
        /// Eager rebalancing, round robin.
        case roundRobin = "roundrobin"
    }

    /// Brokers to bootstrap from, `host:port`.
    public var bootstrapServers: [String]
    /// The consumer group. `nil` makes a group-less consumer that can only ``KafkaConsumer/assign(_:)``
    /// partitions directly and never commits (what replay uses).
    public var groupID: String?
    /// The client id shown in broker logs. Default: `sluice`.
    public var clientID: String = "sluice"
    /// Where to start without a committed offset. Default: ``AutoOffsetReset/earliest``.
    public var autoOffsetReset: AutoOffsetReset = .earliest
    /// The partition assignment strategy. Default: ``AssignmentStrategy/range``.
    ///
    /// - Important: ``AssignmentStrategy/cooperativeSticky`` is supported, but librdkafka before
    ///   2.3.0 (Debian bookworm ships 2.0.2) can abort the process when a cooperative-sticky member
    ///   is reset or destroyed before its first assignment (librdkafka issue 4312). Choose it only
    ///   with a newer librdkafka.
    public var assignmentStrategy: AssignmentStrategy = .range
    /// How long the group waits for a heartbeat before evicting the member. Default: 45 s.
    public var sessionTimeout: Duration = .seconds(45)
    /// The longest gap allowed between polls before the member leaves the group. Default: 300 s.
    public var maxPollInterval: Duration = .seconds(300)
    /// Whether to read only committed transactional records. Default: `true`.
    public var readCommitted: Bool = true
    /// The most records one poll hands over. Default: 1,000.
    public var maxBatchSize: Int = 1_000
    /// How long one poll waits for records. Default: 100 ms.
    public var pollTimeout: Duration = .milliseconds(100)
    /// Records fetched but not yet taken by the application, above which the consumer pauses
    /// fetching until half of them are taken. Bounds the consumer's memory. Default: 20,000.
    public var maxBufferedRecords: Int = 20_000
    /// Raw librdkafka properties, passed through as given; they override the fields above.
    public var properties: [String: String] = [:]

    /// Creates a configuration with the defaults documented on each field.
    public init(bootstrapServers: [String], groupID: String?) {
        self.bootstrapServers = bootstrapServers
        self.groupID = groupID
    }

    /// The complete librdkafka property set this configuration stands for.
    var librdkafkaProperties: [String: String] {
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "client.id": clientID,
            "auto.offset.reset": autoOffsetReset.rawValue,
            // Sluice decides what is committed and when; librdkafka must never do it on its own.
            "enable.auto.commit": "false",
            "enable.auto.offset.store": "false",
            "enable.partition.eof": "false",
            "isolation.level": readCommitted ? "read_committed" : "read_uncommitted",
        ]
        if let groupID {
            result["group.id"] = groupID
            result["partition.assignment.strategy"] = assignmentStrategy.rawValue
            result["session.timeout.ms"] = String(sessionTimeout.milliseconds)
            result["max.poll.interval.ms"] = String(maxPollInterval.milliseconds)
        } else {
            // librdkafka only assigns partitions through a group handle, so a group-less consumer
            // gets a private group of its own that it never joins (no subscribe) and never commits to.
            result["group.id"] = "sluice-unjoined-" + UUID().uuidString.lowercased()
        }
        result.merge(properties) { _, passedThrough in passedThrough }
        return result
    }

    /// The configuration with secret values redacted.
    public var description: String {
        "KafkaConsumerConfiguration(groupID: \(groupID ?? "none"), bootstrapServers: \(bootstrapServers), "
            + "properties: \(SecretRedactor.describe(librdkafkaProperties)))"
    }
}

extension Duration {
    /// Whole milliseconds, rounded down.
    var milliseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000 + attoseconds / 1_000_000_000_000_000
    }
}
