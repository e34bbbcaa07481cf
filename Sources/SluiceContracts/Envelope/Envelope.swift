/// A record value that passed every rule of the envelope contract.
///
/// An `Envelope` only comes out of ``EnvelopeDecoder/decode(_:)``, so holding one means: the
/// identifiers are well formed, the schema version is registered for the event type, and
/// ``data`` is valid against that version's schema.
public struct Envelope: Sendable, Equatable {
    /// `event_id`: 1–128 characters of `[A-Za-z0-9._:-]`, globally unique.
    public var eventID: String
    /// `event_type`: a dotted, lower-case, past-tense name such as `billing.payment_authorized`.
    public var eventType: String
    /// `schema_version`: the version of ``data``'s schema (≥ 1).
    public var schemaVersion: Int
    /// `occurred_at`: when the producer says the event happened, as written and as an instant.
    public var occurredAt: RFC3339Timestamp
    /// `producer`: the service that emitted the event.
    public var producer: String
    /// `correlation_id`: ties together every event of one business flow.
    public var correlationID: String
    /// `causation_id`: the event (or command) that caused this one; never equal to ``eventID``.
    public var causationID: String
    /// `subject`: the stable identifier of the thing the event is about, e.g. `invoice:inv_456`.
    public var subject: String
    /// `data`: the payload, a JSON object valid against
    /// `EventSchemas/<eventType>/v<schemaVersion>.schema.json`.
    public var data: JSONValue

    /// Creates an envelope from already-validated parts (tests, upcasters, producers).
    ///
    /// This initializer checks nothing; records read from Kafka go through ``EnvelopeDecoder``.
    public init(
        eventID: String,
        eventType: String,
        schemaVersion: Int,
        occurredAt: RFC3339Timestamp,
        producer: String,
        correlationID: String,
        causationID: String,
        subject: String,
        data: JSONValue
    ) {
        self.eventID = eventID
        self.eventType = eventType
        self.schemaVersion = schemaVersion
        self.occurredAt = occurredAt
        self.producer = producer
        self.correlationID = correlationID
        self.causationID = causationID
        self.subject = subject
        self.data = data
    }
}
