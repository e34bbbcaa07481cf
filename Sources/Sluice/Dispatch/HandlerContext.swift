import Logging

/// What a handler knows about the event it handles and where it runs.
///
/// - Important: ``transaction`` is only valid while the handler runs. Write the handler's own
///   state through it, so that the state, the processed-event record and the partition's offset
///   commit together. Never begin or commit a transaction yourself.
public struct HandlerContext<Transaction> {
    /// The validated envelope (metadata and raw `data`).
    public let envelope: Envelope
    /// The record as read: topic, partition, offset, timestamp, key, headers and value.
    public let record: Record
    /// A logger carrying the record's metadata (`kafka.topic`, `kafka.partition`, `kafka.offset`,
    /// `event.id`, `event.type`, `correlation.id`, `causation.id`).
    public let logger: Logger
    /// Whether this run is a replay of history. Handlers skip side effects that must not happen
    /// twice (an email, a payment call) when it is.
    public let isReplay: Bool
    /// The attempt number, from 1.
    public let attempt: Int
    /// The name the handler was registered under.
    public let handlerName: String
    /// The store transaction the handler runs in.
    public let transaction: Transaction
}
