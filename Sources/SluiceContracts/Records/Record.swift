/// What a record's timestamp means (Kafka's `message.timestamp.type`).
public enum TimestampType: Sendable, Hashable {
    /// Set by the producer when it created the record.
    case createTime
    /// Set by the broker when it appended the record to the log.
    case logAppendTime
}

/// A record's timestamp: milliseconds since the Unix epoch and what they mean.
public struct RecordTimestamp: Hashable, Sendable {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64
    /// Who set the timestamp.
    public var type: TimestampType

    /// A timestamp of `milliseconds` since the epoch, set by `type`.
    public init(milliseconds: Int64, type: TimestampType) {
        self.milliseconds = milliseconds
        self.type = type
    }
}

/// One record header. Kafka allows repeated names and a null value.
public struct RecordHeader: Hashable, Sendable {
    /// The header's name.
    public var name: String
    /// The value's bytes, or `nil` for a header with a null value.
    public var value: [UInt8]?

    /// A header; a `nil` value is a header with a null value.
    public init(name: String, value: [UInt8]?) {
        self.name = name
        self.value = value
    }

    /// A header whose value is the UTF-8 encoding of `value`.
    public init(name: String, string value: String) {
        self.name = name
        self.value = Array(value.utf8)
    }
}

/// A record as read from a partition: where it came from and its bytes, exactly as stored.
///
/// `Record` is the value every Sluice port speaks: the Kafka adapter produces them, snapshot files
/// hold them, the dispatcher routes them, and the dead-letter router writes them back out.
public struct Record: Hashable, Sendable {
    /// The topic it was read from.
    public var topic: String
    /// Its partition.
    public var partition: Int32
    /// Its offset in the partition.
    public var offset: Offset
    /// The record's timestamp, or `nil` when the broker had none.
    public var timestamp: RecordTimestamp?
    /// The key's bytes, or `nil` for a null key.
    public var key: [UInt8]?
    /// The value's bytes, or `nil` for a null value (a tombstone).
    public var value: [UInt8]?
    /// The headers in the order they were written.
    public var headers: [RecordHeader]

    /// A record as Kafka stored it (tests and snapshot files build them too).
    public init(
        topic: String,
        partition: Int32,
        offset: Offset,
        timestamp: RecordTimestamp? = nil,
        key: [UInt8]? = nil,
        value: [UInt8]? = nil,
        headers: [RecordHeader] = []
    ) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
        self.timestamp = timestamp
        self.key = key
        self.value = value
        self.headers = headers
    }

    /// The partition this record belongs to.
    public var topicPartition: TopicPartition { TopicPartition(topic: topic, partition: partition) }

    /// The value of the last header called `name`, if any.
    public func header(_ name: String) -> [UInt8]? {
        headers.last(where: { $0.name == name })?.value
    }
}
