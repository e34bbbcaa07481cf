/// The names of the headers a dead-lettered record gains, exactly as the product contract spells
/// them. Tools (`sluice dlq`) and other services read them by these names.
public enum DeadLetterHeader {
    public static let originalTopic = "sluice.original.topic"
    public static let originalPartition = "sluice.original.partition"
    public static let originalOffset = "sluice.original.offset"
    /// Milliseconds since the epoch.
    public static let originalTimestamp = "sluice.original.timestamp"
    public static let consumerGroup = "sluice.consumer.group"
    public static let errorCode = "sluice.error.code"
    public static let errorMessage = "sluice.error.message"
    /// `true` or `false`.
    public static let errorRetryable = "sluice.error.retryable"
    public static let attempts = "sluice.attempts"
    /// RFC 3339.
    public static let failedAt = "sluice.failed.at"
    /// Only when a handler failed.
    public static let handler = "sluice.handler"
    /// Only when the envelope had one.
    public static let eventID = "sluice.event.id"
    /// Only when the envelope had one.
    public static let correlationID = "sluice.correlation.id"

    /// Every header name Sluice adds, in the order it writes them.
    public static let all = [
        originalTopic, originalPartition, originalOffset, originalTimestamp, consumerGroup, errorCode,
        errorMessage, errorRetryable, attempts, failedAt, handler, eventID, correlationID,
    ]
}
