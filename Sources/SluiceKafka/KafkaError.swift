/// The error type of `SluiceKafka`.
///
/// Errors that come from librdkafka keep librdkafka's name (``code``, e.g. `_TRANSPORT`,
/// `NOT_LEADER_OR_FOLLOWER`) and number (``number``, its `rd_kafka_resp_err_t`). Errors raised by
/// Sluice itself use codes of its own (``Code/unknownProperty``, ``Code/librdkafkaTooOld``, …) and
/// the number of the closest librdkafka error.
///
/// - Important: No secret configuration value ever appears in ``message``: every text that came
///   from librdkafka passes through the client's redactor first.
public struct KafkaError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable error code: librdkafka's error name, or one of Sluice's own codes.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
        /// The code's text (librdkafka's name, or Sluice's own).
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }

        /// A configuration property librdkafka does not know.
        public static let unknownProperty: Code = "CONFIG_UNKNOWN_PROPERTY"
        /// A configuration property with a value librdkafka refuses.
        public static let invalidProperty: Code = "CONFIG_INVALID_VALUE"
        /// The librdkafka found at run time is older than the one Sluice needs.
        public static let librdkafkaTooOld: Code = "LIBRDKAFKA_TOO_OLD"
        /// The client was closed before the operation could finish.
        public static let clientClosed: Code = "CLIENT_CLOSED"
        /// A mock-cluster operation (fault injection, topic creation) failed.
        public static let embeddedCluster: Code = "EMBEDDED_CLUSTER"
        /// The waiting task was cancelled: while it waited for room in the producer's queue
        /// (nothing was queued), or for a delivery report (the record may still be delivered).
        public static let cancelled: Code = "CANCELLED"
    }

    /// The stable code.
    public var code: Code
    /// librdkafka's error number (`rd_kafka_resp_err_t`).
    public var number: Int32
    /// What went wrong, for a person; secrets redacted.
    public var message: String
    /// Whether repeating the operation may succeed.
    public var isRetriable: Bool
    /// Whether the client can no longer be used (librdkafka's fatal errors).
    public var isFatal: Bool
    /// The configuration property at fault, for configuration errors.
    public var property: String?
    /// Per-partition detail, e.g. which partitions of a commit failed and why.
    public var partitionErrors: [PartitionError]

    /// One partition's part of a failed request.
    public struct PartitionError: Sendable, Hashable {
        /// The topic.
        public var topic: String
        /// The partition.
        public var partition: Int32
        /// What went wrong for this partition.
        public var code: Code
        /// librdkafka's error number.
        public var number: Int32
    }

    /// An error with librdkafka's `code` name and `number`, and a message for a person.
    public init(
        code: Code,
        number: Int32,
        message: String,
        isRetriable: Bool = false,
        isFatal: Bool = false,
        property: String? = nil,
        partitionErrors: [PartitionError] = []
    ) {
        self.code = code
        self.number = number
        self.message = message
        self.isRetriable = isRetriable
        self.isFatal = isFatal
        self.property = property
        self.partitionErrors = partitionErrors
    }

    public var description: String {
        var text = "KafkaError(\(code.rawValue)"
        if isFatal { text += ", fatal" } else if isRetriable { text += ", retriable" }
        text += "): \(message)"
        return text
    }
}
