/// The names of the headers a dead-lettered record gains, exactly as the product contract spells
/// them. Tools (`sluice dlq`) and other services read them by these names.
public enum DeadLetterHeader {
    /// The topic the record was read from.
    public static let originalTopic = "sluice.original.topic"
    /// Its partition.
    public static let originalPartition = "sluice.original.partition"
    /// Its offset.
    public static let originalOffset = "sluice.original.offset"
    /// Milliseconds since the epoch.
    public static let originalTimestamp = "sluice.original.timestamp"
    /// The consumer group that gave up on it.
    public static let consumerGroup = "sluice.consumer.group"
    /// The stable error code.
    public static let errorCode = "sluice.error.code"
    /// The error, for a person.
    public static let errorMessage = "sluice.error.message"
    /// `true` or `false`.
    public static let errorRetryable = "sluice.error.retryable"
    /// How many attempts were made.
    public static let attempts = "sluice.attempts"
    /// RFC 3339.
    public static let failedAt = "sluice.failed.at"
    /// Only when a handler failed.
    public static let handler = "sluice.handler"
    /// Only when the envelope had one.
    public static let eventID = "sluice.event.id"
    /// Only when the envelope had one.
    public static let correlationID = "sluice.correlation.id"
    /// `true`, only on a stub: the original record was too large for the dead-letter topic, and
    /// the letter's value is a prefix of the original value (possibly empty).
    public static let valueTruncated = "sluice.value.truncated"
    /// Only on a stub: the original value's size in bytes, in decimal.
    public static let valueSize = "sluice.value.size"
    /// Only on a stub: the lower-case hex SHA-256 of the original value (``PayloadHash``).
    public static let valueSHA256 = "sluice.value.sha256"
    /// Only when the pipeline traces: the W3C `traceparent` of the record's `sluice.process`
    /// span, the span that ended with the dead letter, so the failure can be found in its trace.
    /// The record's own `traceparent` (its producer's) is kept unchanged among the original headers.
    public static let traceParent = "sluice.traceparent"

    /// `true`, only with `--on-poison park`: the record's key became parked by this failure, and
    /// its later records wait in the store for `parked release`.
    public static let parked = "sluice.parked"

    /// Every header name Sluice adds, in the order it writes them.
    public static let all = [
        originalTopic, originalPartition, originalOffset, originalTimestamp, consumerGroup, errorCode,
        errorMessage, errorRetryable, attempts, failedAt, handler, eventID, correlationID, traceParent,
        valueTruncated, valueSize, valueSHA256, parked,
    ]
}
