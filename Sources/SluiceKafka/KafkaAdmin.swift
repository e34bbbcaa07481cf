import Dispatch
import Logging
import Sluice

/// Cluster administration: create topics, list topics with their partition counts.
public final class KafkaAdmin: Sendable {
    /// A topic to create.
    public struct NewTopic: Sendable, Hashable {
        /// The topic's name.
        public var name: String
        /// How many partitions it gets.
        public var partitions: Int
        /// How many replicas each partition has.
        public var replicationFactor: Int
        /// Topic-level configuration, e.g. `retention.ms`.
        public var config: [String: String]

        /// A topic named `name` with `partitions` partitions.
        public init(name: String, partitions: Int, replicationFactor: Int = 1, config: [String: String] = [:]) {
            self.name = name
            self.partitions = partitions
            self.replicationFactor = replicationFactor
            self.config = config
        }
    }

    private let client: RDKafkaClient
    private let queue = DispatchQueue(label: "sluice.kafka.admin")

    /// Creates an admin client.
    ///
    /// - Parameters:
    ///   - bootstrapServers: The brokers to ask, `host:port` each.
    ///   - properties: Raw librdkafka properties (security settings and the like), passed through.
    ///   - logger: Where librdkafka's log lines go.
    public init(bootstrapServers: [String], properties: [String: String] = [:], logger: Logger) throws(KafkaError) {
        var all = properties
        all["bootstrap.servers"] = bootstrapServers.joined(separator: ",")
        client = try RDKafkaClient(kind: .producer, properties: all, logger: logger)
    }

    /// Creates topics. A topic that already exists is an error (`TOPIC_ALREADY_EXISTS`) unless
    /// `ignoreExisting`.
    ///
    /// - Throws: ``KafkaError`` for the first topic that failed, with the request-level error otherwise.
    public func createTopics(
        _ topics: [NewTopic], ignoreExisting: Bool = false, timeout: Duration = .seconds(30)
    ) async throws(KafkaError) {
        let client = self.client
        let specs = topics.map {
            (name: $0.name, partitions: Int32($0.partitions), replicationFactor: Int32($0.replicationFactor), config: $0.config)
        }
        let result: Result<[String: KafkaError?], KafkaError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(KafkaError) in
                    try client.createTopics(specs, timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
                })
            }
        }
        for topic in topics {
            guard case .some(.some(let failure)) = try result.get()[topic.name] else { continue }
            if ignoreExisting && failure.code == "TOPIC_ALREADY_EXISTS" { continue }
            throw failure
        }
    }

    /// Every topic (internal ones excluded) with its number of partitions.
    public func listTopics(timeout: Duration = .seconds(10)) async throws(KafkaError) -> [String: Int] {
        let client = self.client
        let result: Result<[String: Int], KafkaError> = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: Result { () throws(KafkaError) in
                    try client.topicPartitionCounts(timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
                })
            }
        }
        return try result.get()
    }
}
