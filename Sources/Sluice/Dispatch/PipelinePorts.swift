/// Pauses and resumes fetching per partition (the Kafka consumer, in live mode).
public protocol PartitionFlowControl: Sendable {
    func pause(_ partitions: [TopicPartition]) async throws
    func resume(_ partitions: [TopicPartition]) async throws
}

/// Commits the position a consumer group resumes from.
public protocol OffsetCommitter: Sendable {
    /// Commits `offsets` (each the next offset to read) and returns once they are durable.
    func commit(_ offsets: [TopicPartition: Offset]) async throws
}

/// Writes dead-letter records.
public protocol DeadLetterSink: Sendable {
    /// Writes `record` and returns only once the broker acknowledged it.
    ///
    /// - Throws: When the record could not be written. A ``DeadLetterWriteError`` says what kind
    ///   of failure it is: for ``DeadLetterWriteError/Kind/tooLarge(limit:)`` the caller writes a
    ///   stub of the record instead (``DeadLetterRecord/stubs(fittingIn:)``); otherwise, and for
    ///   any other error, it keeps the poison record's partition halted and tries again.
    func send(_ record: DeadLetterRecord) async throws
}

/// What became of one record. Every case but ``abandoned`` is a durable outcome, after which the
/// partition's commit position may move past the record.
public enum RecordOutcome: Sendable, Hashable {
    /// A handler ran and its transaction committed.
    case handled
    /// The event had been processed before; no handler ran.
    case duplicate
    /// Written to the dead-letter topic and acknowledged, with this code.
    case deadLettered(SluiceError.Code)
    /// Deliberately skipped by policy (for example an unknown event type), with this code.
    case skipped(SluiceError.Code)
    /// Its key is parked (``Parking``): appended to the key's parked sequence, not handled;
    /// `parked release` handles it later, in order.
    case parked
    /// No outcome: processing was cancelled (revocation, shutdown) before one was reached. The
    /// record will be delivered again from the last commit.
    case abandoned

    /// Whether the commit position may move past the record.
    public var isDurable: Bool { self != .abandoned }
}
