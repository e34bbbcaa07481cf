/// The error type of the `Sluice` core module.
///
/// Every error has a stable ``code`` that tools and tests match on, a human ``message``, and, where
/// one applies, a JSON-pointer ``path`` into the offending document. Envelope errors use exactly the
/// codes of the product contract (`EVENT_ID_INVALID`, `PAYLOAD_SCHEMA_VIOLATION`, …).
public struct SluiceError: Error, Sendable, Hashable, CustomStringConvertible {
    /// A stable, machine-readable error code such as `ENVELOPE_FIELD_MISSING`.
    public struct Code: RawRepresentable, Hashable, Sendable, CustomStringConvertible,
        ExpressibleByStringLiteral
    {
        /// The code as written in logs, headers and tests.
        public var rawValue: String
        public init(rawValue: String) { self.rawValue = rawValue }
        public init(stringLiteral value: String) { self.rawValue = value }
        public var description: String { rawValue }
    }

    /// The stable code.
    public var code: Code
    /// What went wrong, for a person.
    public var message: String
    /// A JSON pointer (RFC 6901) into the document at fault, when one applies; `""` is the root.
    public var path: String?
    /// Whether trying the same thing again may succeed. Decode and validation errors never are.
    public var isRetriable: Bool
    /// The error this one wraps, if any, described (errors are not all `Hashable`).
    public var underlying: String?

    /// An error with a stable `code` and a `message` for a person; `path` points into the document at fault.
    public init(
        code: Code,
        message: String,
        path: String? = nil,
        isRetriable: Bool = false,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.message = message
        self.path = path
        self.isRetriable = isRetriable
        self.underlying = underlying.map { String(describing: $0) }
    }

    public var description: String {
        var text = "\(code.rawValue): \(message)"
        if let path { text += " (at \(path.isEmpty ? "/" : path))" }
        return text
    }
}

extension SluiceError.Code {
    // The envelope's codes, exactly as the product contract spells them.
    /// The value is absent, not JSON, or not a JSON object.
    public static let envelopeNotJSON: Self = "ENVELOPE_NOT_JSON"
    /// The value is over the size, depth or string-length limits.
    public static let envelopeTooLarge: Self = "ENVELOPE_TOO_LARGE"
    /// A required envelope field is absent or null.
    public static let envelopeFieldMissing: Self = "ENVELOPE_FIELD_MISSING"
    /// An envelope field is present but malformed.
    public static let envelopeFieldInvalid: Self = "ENVELOPE_FIELD_INVALID"
    /// `event_id` is not 1–128 characters of `[A-Za-z0-9._:-]`.
    public static let eventIDInvalid: Self = "EVENT_ID_INVALID"
    /// No schema describes the event type.
    public static let eventTypeUnknown: Self = "EVENT_TYPE_UNKNOWN"
    /// The event type has no schema of this version.
    public static let schemaVersionUnsupported: Self = "SCHEMA_VERSION_UNSUPPORTED"
    /// `correlation_id` or `causation_id` is malformed, or the causation is the event itself.
    public static let causationInvalid: Self = "CAUSATION_INVALID"
    /// `data` is not valid against its schema.
    public static let payloadSchemaViolation: Self = "PAYLOAD_SCHEMA_VIOLATION"
    /// An event id already processed arrived with a different payload.
    public static let eventIDPayloadMismatch: Self = "EVENT_ID_PAYLOAD_MISMATCH"
}
