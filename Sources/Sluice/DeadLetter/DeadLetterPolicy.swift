/// Where poison records go.
public struct DeadLetterPolicy: Sendable, Hashable {
    /// Appended to a topic's name to get its dead-letter topic. Default: `.DLT`.
    public var suffix: String = ".DLT"
    /// Dead-letter topics chosen per source topic, overriding the suffix.
    public var topics: [String: String] = [:]
    /// The longest pause between attempts to write a dead letter while the topic cannot be
    /// written (the partition stays halted meanwhile). Default: 30 s.
    public var maxRetryDelay: Duration = .seconds(30)

    /// The defaults described on each property.
    public init() {}

    /// The dead-letter topic for records of `topic`.
    public func topic(for topic: String) -> String {
        topics[topic] ?? topic + suffix
    }
}
