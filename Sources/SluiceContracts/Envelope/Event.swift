/// An envelope whose payload has been decoded into a handler's own type.
///
/// Produced by ``UpcasterChain/event(_:as:version:)``: the payload is at ``schemaVersion``, the
/// version the handler asked for, even when the producer wrote an older one
/// (``originalSchemaVersion``).
public struct Event<Payload: Decodable & Sendable>: Sendable {
    /// The envelope as received (its `data` at ``originalSchemaVersion``).
    public var envelope: Envelope
    /// The version the payload was decoded at, after upcasting.
    public var schemaVersion: Int
    /// The decoded payload.
    public var payload: Payload

    /// Creates an event from its parts.
    public init(envelope: Envelope, schemaVersion: Int, payload: Payload) {
        self.envelope = envelope
        self.schemaVersion = schemaVersion
        self.payload = payload
    }

    /// `event_id`.
    public var eventID: String { envelope.eventID }
    /// `event_type`.
    public var eventType: String { envelope.eventType }
    /// The version the producer wrote.
    public var originalSchemaVersion: Int { envelope.schemaVersion }
    /// `occurred_at`.
    public var occurredAt: RFC3339Timestamp { envelope.occurredAt }
    /// `producer`.
    public var producer: String { envelope.producer }
    /// `correlation_id`.
    public var correlationID: String { envelope.correlationID }
    /// `causation_id`.
    public var causationID: String { envelope.causationID }
    /// `subject`.
    public var subject: String { envelope.subject }
    /// Whether the payload was upcast from an older version.
    public var wasUpcast: Bool { schemaVersion != envelope.schemaVersion }
}
