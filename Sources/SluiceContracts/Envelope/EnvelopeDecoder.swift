/// Turns a record value into a validated ``Envelope``, or into the one contract error that
/// explains why it cannot be.
///
/// The decoder applies every rule of the envelope table. When a value breaks several rules it
/// reports the first one in this fixed precedence, so one value always yields the same code:
///
/// 1. Structure: a `nil` value, bytes that are not JSON, or JSON that is not an object are
///    `ENVELOPE_NOT_JSON` (path `""` for a non-object); a value over ``EnvelopeLimits`` (bytes,
///    nesting depth, string length) is `ENVELOPE_TOO_LARGE`.
/// 2. The fields, in the contract's order: `event_id`, `event_type`, `schema_version`,
///    `occurred_at`, `producer`, `correlation_id`, `causation_id`, `subject`, `data`.
/// 3. The schema lookup: `EVENT_TYPE_UNKNOWN` (path `/event_type`), then
///    `SCHEMA_VERSION_UNSUPPORTED` (path `/schema_version`).
/// 4. The payload against its schema: `PAYLOAD_SCHEMA_VIOLATION`, its path the first
///    violation's instance path under `/data` (e.g. `/data/amount_minor`).
///
/// Field rules. An absent field, or one whose value is JSON `null`, is `ENVELOPE_FIELD_MISSING`
/// with the field's path, for every field. A present field that breaks its rule gets the
/// table's code:
///
/// | field | present but broken |
/// |---|---|
/// | `event_id` | `EVENT_ID_INVALID`: not a string of 1–128 `[A-Za-z0-9._:-]` |
/// | `event_type` | `ENVELOPE_FIELD_INVALID`: see ``EnvelopeRules/isValidEventType(_:)`` |
/// | `schema_version` | `ENVELOPE_FIELD_INVALID`: not an integer ≥ 1 (a string `"2"`, `1.5`, `0`). `2.0` is the integer 2, as in JSON Schema. |
/// | `occurred_at` | `ENVELOPE_FIELD_INVALID`: not an RFC 3339 string (see ``RFC3339Timestamp``) |
/// | `producer` | `ENVELOPE_FIELD_MISSING`: not a string, or empty |
/// | `correlation_id` | `CAUSATION_INVALID`: not an identifier |
/// | `causation_id` | `CAUSATION_INVALID`: not an identifier, or equal to `event_id` |
/// | `subject` | `ENVELOPE_FIELD_MISSING`: not a string, or empty |
/// | `data` | `PAYLOAD_SCHEMA_VIOLATION` (path `/data`): not an object |
///
/// Unknown top-level fields are ignored. When a member name repeats, the last one counts (as
/// ``JSONObject``'s subscript does). Every error is non-retryable.
public struct EnvelopeDecoder: Sendable {
    /// The size, depth and string-length bounds.
    public let limits: EnvelopeLimits
    /// Where payload schemas are looked up.
    public let registry: SchemaRegistry

    private let parseLimits: JSONParseLimits

    /// Creates a decoder.
    ///
    /// - Parameters:
    ///   - registry: the schemas `data` is validated against.
    ///   - limits: the bounds on a record value. Default: ``EnvelopeLimits/default``.
    public init(registry: SchemaRegistry, limits: EnvelopeLimits = .default) {
        self.registry = registry
        self.limits = limits
        self.parseLimits = limits.parseLimits
    }

    /// Decodes and validates one record value.
    ///
    /// - Parameter value: the record's value bytes; `nil` for a tombstone.
    /// - Returns: the validated envelope.
    /// - Throws: the first broken rule, in the precedence the type documents.
    public func decode(_ value: [UInt8]?) throws(SluiceError) -> Envelope {
        guard let value else {
            throw SluiceError(code: .envelopeNotJSON, message: "the record has no value (a tombstone)")
        }
        // Checked before parsing so an oversized value costs nothing to refuse.
        guard value.count <= limits.maxValueBytes else {
            throw SluiceError(
                code: .envelopeTooLarge,
                message: "the value is \(value.count) bytes; the limit is \(limits.maxValueBytes)")
        }
        let document: JSONValue
        do throws(JSONParseError) {
            document = try JSONParser.parse(value, limits: parseLimits)
        } catch {
            throw Self.error(for: error)
        }
        return try decode(document: document)
    }

    /// Decodes and validates a record value, returning the outcome instead of throwing.
    public func result(decoding value: [UInt8]?) -> Result<Envelope, SluiceError> {
        do throws(SluiceError) {
            return .success(try decode(value))
        } catch {
            return .failure(error)
        }
    }

    /// Validates an already-parsed envelope document (all rules except the structural limits,
    /// which only apply to bytes).
    public func decode(document: JSONValue) throws(SluiceError) -> Envelope {
        guard case .object(let object) = document else {
            throw SluiceError(code: .envelopeNotJSON, message: "the value is JSON but not an object", path: "")
        }

        // One pass over the members instead of one lookup per field. Positions, not values, are
        // collected so that members are not copied (retained) twice; later duplicates win.
        var positions = FieldPositions()
        object.members.withUnsafeBufferPointer { members in
            // Names match by code point, as JSON compares them (a `switch` on the String alone
            // would use canonical equivalence; with the length it is exact for these ASCII names,
            // see hasSameCodePoints(asASCII:)). The length picks the candidates, so most unknown
            // members cost one integer compare.
            for index in members.indices {
                let key = members[index].key
                switch key.utf8.count {
                case 4: if key.hasSameCodePoints(asASCII: "data") { positions.data = index }
                case 7: if key.hasSameCodePoints(asASCII: "subject") { positions.subject = index }
                case 8:
                    if key.hasSameCodePoints(asASCII: "event_id") {
                        positions.eventID = index
                    } else if key.hasSameCodePoints(asASCII: "producer") {
                        positions.producer = index
                    }
                case 10: if key.hasSameCodePoints(asASCII: "event_type") { positions.eventType = index }
                case 11: if key.hasSameCodePoints(asASCII: "occurred_at") { positions.occurredAt = index }
                case 12: if key.hasSameCodePoints(asASCII: "causation_id") { positions.causationID = index }
                case 14:
                    if key.hasSameCodePoints(asASCII: "schema_version") {
                        positions.schemaVersion = index
                    } else if key.hasSameCodePoints(asASCII: "correlation_id") {
                        positions.correlationID = index
                    }
                default: continue
                }
            }
        }
        let members = object.members
        // Fields are read in place: a string field yields its String, never a copy of the
        // JSONValue around it (those copies showed in the decoder's profile).
        @inline(__always) func string(_ index: Int, _ field: StaticString) throws(SluiceError) -> String? {
            guard index >= 0 else { throw Self.missing(field) }
            switch members[index].value {
            case .null: throw Self.missing(field)
            case .string(let text): return text
            default: return nil
            }
        }

        let eventIDText = try string(positions.eventID, "event_id")
        guard let eventID = eventIDText, EnvelopeRules.isValidIdentifier(eventID) else {
            throw Self.invalid(
                .eventIDInvalid, "event_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }

        let eventTypeText = try string(positions.eventType, "event_type")
        guard let eventType = eventTypeText, EnvelopeRules.isValidEventType(eventType) else {
            throw Self.invalid(
                .envelopeFieldInvalid, "event_type",
                "must be a dotted lower-case past-tense name such as billing.payment_authorized")
        }

        let schemaVersionNumber: JSONNumber?
        guard positions.schemaVersion >= 0 else { throw Self.missing("schema_version") }
        switch members[positions.schemaVersion].value {
        case .null: throw Self.missing("schema_version")
        case .number(let number): schemaVersionNumber = number
        default: schemaVersionNumber = nil
        }
        guard let exact = schemaVersionNumber?.int64Value, exact >= 1 else {
            throw Self.invalid(.envelopeFieldInvalid, "schema_version", "must be an integer ≥ 1")
        }
        let schemaVersion = Int(exact)

        let occurredAtText = try string(positions.occurredAt, "occurred_at")
        guard let occurredAtText = occurredAtText,
            let occurredAt = RFC3339Timestamp(occurredAtText)
        else {
            throw Self.invalid(
                .envelopeFieldInvalid, "occurred_at", "must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z")
        }

        let producerText = try string(positions.producer, "producer")
        guard let producer = producerText, !producer.isEmpty else {
            throw Self.invalid(.envelopeFieldMissing, "producer", "must be a non-empty string")
        }

        let correlationIDText = try string(positions.correlationID, "correlation_id")
        guard let correlationID = correlationIDText,
            EnvelopeRules.isValidIdentifier(correlationID)
        else {
            throw Self.invalid(
                .causationInvalid, "correlation_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }

        let causationIDText = try string(positions.causationID, "causation_id")
        guard let causationID = causationIDText, EnvelopeRules.isValidIdentifier(causationID)
        else {
            throw Self.invalid(
                .causationInvalid, "causation_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }
        guard causationID != eventID else {
            throw Self.invalid(.causationInvalid, "causation_id", "must differ from event_id (an event cannot cause itself)")
        }

        let subjectText = try string(positions.subject, "subject")
        guard let subject = subjectText, !subject.isEmpty else {
            throw Self.invalid(.envelopeFieldMissing, "subject", "must be a non-empty string such as invoice:inv_456")
        }

        guard positions.data >= 0 else { throw Self.missing("data") }
        let data = members[positions.data].value
        if data.isNull { throw Self.missing("data") }
        guard case .object = data else {
            throw Self.invalid(.payloadSchemaViolation, "data", "must be a JSON object")
        }

        let schema = try registry.schema(for: eventType, version: schemaVersion)
        let violations = schema.validate(data)
        if let first = violations.first {
            let more = violations.count > 1 ? " (and \(violations.count - 1) more)" : ""
            throw SluiceError(
                code: .payloadSchemaViolation,
                message: "data is not valid against \(eventType) v\(schemaVersion): \(first.message)\(more)",
                path: "/data" + first.instancePath)
        }

        return Envelope(
            eventID: eventID, eventType: eventType, schemaVersion: schemaVersion, occurredAt: occurredAt,
            producer: producer, correlationID: correlationID, causationID: causationID, subject: subject,
            data: data)
    }

    private static func missing(_ field: StaticString) -> SluiceError {
        SluiceError(code: .envelopeFieldMissing, message: "the required field \(field) is missing", path: "/\(field)")
    }

    private static func invalid(_ code: SluiceError.Code, _ field: StaticString, _ rule: String) -> SluiceError {
        SluiceError(code: code, message: "\(field) \(rule)", path: "/\(field)")
    }

    private static func error(for parseError: JSONParseError) -> SluiceError {
        switch parseError.kind {
        case .tooLarge, .tooDeep, .stringTooLong:
            SluiceError(
                code: .envelopeTooLarge, message: "the value is over the envelope limits: \(parseError.message)",
                underlying: parseError)
        case .syntax, .invalidUTF8:
            SluiceError(
                code: .envelopeNotJSON,
                message: "the value is not JSON (byte \(parseError.offset): \(parseError.message))",
                underlying: parseError)
        }
    }
}

/// Where each envelope field sits in the object's members; -1 when absent.
private struct FieldPositions {
    var eventID = -1
    var eventType = -1
    var schemaVersion = -1
    var occurredAt = -1
    var producer = -1
    var correlationID = -1
    var causationID = -1
    var subject = -1
    var data = -1
}

extension JSONValue {
    /// Whether this is JSON `null`: cheaper than `== .null` on the decode path.
    @inline(__always)
    fileprivate var isNull: Bool {
        if case .null = self { return true }
        return false
    }
}
