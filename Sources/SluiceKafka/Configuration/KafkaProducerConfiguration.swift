/// How a ``KafkaProducer`` connects and delivers.
///
/// The producer is idempotent by default: librdkafka numbers every record so retries can neither
/// duplicate nor reorder them within a partition. ``properties`` passes any librdkafka property
/// through and wins over the typed fields.
public struct KafkaProducerConfiguration: Sendable, CustomStringConvertible {
    /// Brokers to bootstrap from, `host:port`.
    public var bootstrapServers: [String]
    /// The client id shown in broker logs. Default: `sluice`.
    public var clientID: String = "sluice"
    /// Exactly-once delivery per partition (`enable.idempotence`, which implies `acks=all`). Default: `true`.
    public var idempotent: Bool = true
    /// How long a record may wait for a successful delivery before it fails. Default: 30 s.
    public var deliveryTimeout: Duration = .seconds(30)
    /// How long records wait to be batched. Default: 5 ms.
    public var linger: Duration = .milliseconds(5)
    /// How long ``KafkaProducer/close()`` waits for outstanding deliveries before it fails them. Default: 30 s.
    public var flushTimeout: Duration = .seconds(30)
    /// Raw librdkafka properties, passed through as given; they override the fields above.
    public var properties: [String: String] = [:]

    /// Creates a configuration with the defaults documented on each field.
    public init(bootstrapServers: [String]) {
        self.bootstrapServers = bootstrapServers
    }

    /// The complete librdkafka property set this configuration stands for.
    var librdkafkaProperties: [String: String] {
        var result: [String: String] = [
            "bootstrap.servers": bootstrapServers.joined(separator: ","),
            "client.id": clientID,
            "enable.idempotence": idempotent ? "true" : "false",
            "message.timeout.ms": String(deliveryTimeout.milliseconds),
            "linger.ms": String(linger.milliseconds),
        ]
        if idempotent { result["acks"] = "all" }
        result.merge(properties) { _, passedThrough in passedThrough }
        return result
    }

    /// The configuration with secret values redacted.
    public var description: String {
        "KafkaProducerConfiguration(bootstrapServers: \(bootstrapServers), "
            + "properties: \(SecretRedactor.describe(librdkafkaProperties)))"
    }
}
