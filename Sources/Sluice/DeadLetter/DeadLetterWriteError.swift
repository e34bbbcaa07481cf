/// A dead-letter write that failed in a way the pipeline answers differently from an outage.
///
/// A ``DeadLetterSink`` throws it to say *why* a letter was not written. Any other error a sink
/// throws counts as ``Kind/transient``. The pipeline answers each kind (see
/// `EventPipeline`): a transient failure halts the partition and retries with backoff; a letter
/// that is too large is written again at once as a stub (``DeadLetterRecord/stubs(fittingIn:)``);
/// a refusal halts the partition and retries with backoff too, logging at `critical` the fix that
/// ends it.
public struct DeadLetterWriteError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What kind of failure it is.
    public enum Kind: Sendable, Hashable {
        /// May pass by itself: a broker down, a leader moving, a timeout.
        case transient
        /// The letter is larger than the producer or the topic accepts. `limit` is the largest
        /// record, in bytes, that is accepted, when the sink knows it (`nil`: not known).
        case tooLarge(limit: Int?)
        /// Refused until someone changes authorization or configuration (the topic does not
        /// exist, the principal may not write to it, the topic's settings refuse the record);
        /// `fix` says, for a person, what to change.
        case refused(fix: String)
    }

    /// What kind of failure it is.
    public var kind: Kind
    /// The sink's own code for the failure, e.g. librdkafka's `TOPIC_AUTHORIZATION_FAILED`.
    public var code: String
    /// What went wrong, for a person.
    public var message: String

    /// A failure of `kind`, with the sink's `code` and a `message` for a person.
    public init(kind: Kind, code: String, message: String) {
        self.kind = kind
        self.code = code
        self.message = message
    }

    public var description: String { "\(code): \(message)" }
}
