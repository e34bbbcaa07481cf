import Logging
import Sluice

/// A Kafka request type, for injecting errors into the requests of one kind.
public struct KafkaRequestType: RawRepresentable, Hashable, Sendable {
    /// The Kafka protocol's ApiKey.
    public var rawValue: Int16
    public init(rawValue: Int16) { self.rawValue = rawValue }

    /// Kafka's `produce` (number 0).
    public static let produce = Self(rawValue: 0)
    /// Kafka's `fetch` (number 1).
    public static let fetch = Self(rawValue: 1)
    /// Kafka's `listOffsets` (number 2).
    public static let listOffsets = Self(rawValue: 2)
    /// Kafka's `metadata` (number 3).
    public static let metadata = Self(rawValue: 3)
    /// Kafka's `offsetCommit` (number 8).
    public static let offsetCommit = Self(rawValue: 8)
    /// Kafka's `offsetFetch` (number 9).
    public static let offsetFetch = Self(rawValue: 9)
    /// Kafka's `findCoordinator` (number 10).
    public static let findCoordinator = Self(rawValue: 10)
    /// Kafka's `joinGroup` (number 11).
    public static let joinGroup = Self(rawValue: 11)
    /// Kafka's `heartbeat` (number 12).
    public static let heartbeat = Self(rawValue: 12)
    /// Kafka's `leaveGroup` (number 13).
    public static let leaveGroup = Self(rawValue: 13)
    /// Kafka's `syncGroup` (number 14).
    public static let syncGroup = Self(rawValue: 14)
    /// Kafka's `initProducerID` (number 22).
    public static let initProducerID = Self(rawValue: 22)
}

/// A broker-side error code to inject (Kafka protocol error numbers; negative ones are
/// librdkafka's own, e.g. ``transportFailure`` disconnects the client).
public struct KafkaBrokerError: RawRepresentable, Hashable, Sendable {
    /// The number Kafka's protocol uses.
    public var rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }

    /// Disconnects the client instead of answering.
    public static let transportFailure = Self(rawValue: -195)
    /// Kafka's `leaderNotAvailable` (number 5).
    public static let leaderNotAvailable = Self(rawValue: 5)
    /// Kafka's `notLeaderOrFollower` (number 6).
    public static let notLeaderOrFollower = Self(rawValue: 6)
    /// Kafka's `requestTimedOut` (number 7).
    public static let requestTimedOut = Self(rawValue: 7)
    /// Kafka's `notEnoughReplicas` (number 19).
    public static let notEnoughReplicas = Self(rawValue: 19)
    /// Kafka's `notCoordinator` (number 16).
    public static let notCoordinator = Self(rawValue: 16)
    /// Kafka's `topicAuthorizationFailed` (number 29).
    public static let topicAuthorizationFailed = Self(rawValue: 29)
    /// Kafka's `recordListTooLarge` (number 18).
    public static let recordListTooLarge = Self(rawValue: 18)
    /// Kafka's `invalidRecord` (number 87).
    public static let invalidRecord = Self(rawValue: 87)
}

/// An in-process Kafka cluster for tests, demos and local development: librdkafka's mock
/// cluster, which speaks the Kafka protocol on loopback sockets (so other processes can use it
/// too) and supports consumer groups, commits and fault injection.
///
/// It keeps only about 5 MB per partition: make big topics wide, or consume while producing.
/// The cluster stops when the last reference to it goes away.
///
/// ```swift
/// let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: logger)
/// try cluster.createTopic("orders", partitions: 8)
/// let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: [cluster.bootstrapServers], groupID: "g"), logger: logger)
/// ```
public final class EmbeddedKafkaCluster: Sendable {
    private let cluster: RDKafkaMockCluster
    /// The brokers' ids, `1...brokers`.
    public let brokerIDs: [Int32]

    /// Starts `brokers` brokers on loopback ports chosen by the system.
    public init(brokers: Int = 1, logger: Logger) throws(KafkaError) {
        guard brokers >= 1 else {
            throw KafkaError.invalidArgument("an embedded cluster needs at least one broker, not \(brokers)")
        }
        cluster = try RDKafkaMockCluster(brokers: Int32(brokers), logger: logger)
        brokerIDs = (1...Int32(brokers)).map { $0 }
    }

    /// The `host:port` list to give clients as `bootstrap.servers`.
    public var bootstrapServers: String { cluster.bootstrapServers }

    /// Creates a topic (replication is capped at the number of brokers).
    public func createTopic(_ name: String, partitions: Int, replicationFactor: Int = 1) throws(KafkaError) {
        try cluster.createTopic(
            name, partitions: Int32(partitions), replicationFactor: Int32(min(replicationFactor, brokerIDs.count)))
    }

    /// Takes a broker down: its connections close and new ones are refused until ``bringBrokerUp(_:)``.
    public func takeBrokerDown(_ broker: Int32) throws(KafkaError) {
        try cluster.setBrokerDown(broker)
    }

    /// Brings a broker taken down back.
    public func bringBrokerUp(_ broker: Int32) throws(KafkaError) {
        try cluster.setBrokerUp(broker)
    }

    /// Makes the next `errors.count` requests of `request` fail, in order, with these errors.
    public func injectErrors(_ errors: [KafkaBrokerError], into request: KafkaRequestType) {
        cluster.pushRequestErrors(apiKey: request.rawValue, errors: errors.map(\.rawValue))
    }

    /// Removes errors injected for `request` that have not been used yet.
    public func clearInjectedErrors(for request: KafkaRequestType) {
        cluster.clearRequestErrors(apiKey: request.rawValue)
    }

    /// Makes every request for `topic` fail with `error` (``KafkaBrokerError/init(rawValue:)`` 0 clears it).
    public func setTopicError(_ topic: String, _ error: KafkaBrokerError) {
        cluster.setTopicError(topic, error: error.rawValue)
    }

    /// Moves a partition's leadership to another broker (clients must follow it).
    public func moveLeader(of partition: TopicPartition, to broker: Int32) throws(KafkaError) {
        try cluster.setPartitionLeader(topic: partition.topic, partition: partition.partition, broker: broker)
    }

    /// Makes a broker answer every request only after `delay`.
    public func setRoundTripTime(of broker: Int32, to delay: Duration) throws(KafkaError) {
        try cluster.setBrokerRoundTripTime(broker, milliseconds: Int32(clamping: delay.milliseconds))
    }

    /// Moves a consumer group's coordinator to another broker.
    public func setGroupCoordinator(_ group: String, to broker: Int32) throws(KafkaError) {
        try cluster.setCoordinator(group: group, broker: broker)
    }
}
