/// One difference between two consecutive versions of an event type's schema.
public struct SchemaChange: Sendable, Hashable, CustomStringConvertible {
    /// The event type.
    public var eventType: String
    /// The older version compared.
    public var fromVersion: Int
    /// The newer version compared.
    public var toVersion: Int
    /// A JSON pointer to the subschema that changed, in the newer version's document (in the
    /// older one for something removed), e.g. `/properties/amount_minor`.
    public var path: String
    /// The rule that classified the change, e.g. `required_field_added`, `max_length_lowered`.
    public var rule: String
    /// What the rule makes of it.
    public var verdict: CompatibilityVerdict
    /// The specifics, for a person: old and new values.
    public var detail: String

    /// Creates a change record.
    public init(
        eventType: String, fromVersion: Int, toVersion: Int, path: String, rule: String,
        verdict: CompatibilityVerdict, detail: String
    ) {
        self.eventType = eventType
        self.fromVersion = fromVersion
        self.toVersion = toVersion
        self.path = path
        self.rule = rule
        self.verdict = verdict
        self.detail = detail
    }

    /// `billing.payment_authorized v1→v2`.
    public var schemaLabel: String { "\(eventType) v\(fromVersion)→v\(toVersion)" }

    public var description: String {
        "\(verdict) \(schemaLabel) \(path.isEmpty ? "/" : path) \(rule): \(detail)"
    }
}
