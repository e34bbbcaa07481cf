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
            // Names match by code point, as JSON compares them (a `switch` on the String would
            // use canonical equivalence). The length picks the candidates, so most unknown
            // members cost one integer compare.
            for index in members.indices {
                let key = members[index].key
                switch key.utf8.count {
                case 4: if key.hasSameCodePoints(as: "data") { positions.data = index }
                case 7: if key.hasSameCodePoints(as: "subject") { positions.subject = index }
                case 8:
                    if key.hasSameCodePoints(as: "event_id") {
                        positions.eventID = index
                    } else if key.hasSameCodePoints(as: "producer") {
                        positions.producer = index
                    }
                case 10: if key.hasSameCodePoints(as: "event_type") { positions.eventType = index }
                case 11: if key.hasSameCodePoints(as: "occurred_at") { positions.occurredAt = index }
                case 12: if key.hasSameCodePoints(as: "causation_id") { positions.causationID = index }
                case 14:
                    if key.hasSameCodePoints(as: "schema_version") {
                        positions.schemaVersion = index
                    } else if key.hasSameCodePoints(as: "correlation_id") {
                        positions.correlationID = index
                    }
                default: continue
                }
            }
        }
        let members = object.members
        @inline(__always) func value(at index: Int) -> JSONValue? { index < 0 ? nil : members[index].value }
        let eventIDValue = value(at: positions.eventID)
        let eventTypeValue = value(at: positions.eventType)
        let schemaVersionValue = value(at: positions.schemaVersion)
        let occurredAtValue = value(at: positions.occurredAt)
        let producerValue = value(at: positions.producer)
        let correlationIDValue = value(at: positions.correlationID)
        let causationIDValue = value(at: positions.causationID)
        let subjectValue = value(at: positions.subject)
        let dataValue = value(at: positions.data)

        let eventIDField = try Self.required(eventIDValue, "event_id")
        guard case .string(let eventID) = eventIDField, EnvelopeRules.isValidIdentifier(eventID) else {
            throw Self.invalid(
                .eventIDInvalid, "event_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }

        let eventTypeField = try Self.required(eventTypeValue, "event_type")
        guard case .string(let eventType) = eventTypeField, EnvelopeRules.isValidEventType(eventType) else {
            throw Self.invalid(
                .envelopeFieldInvalid, "event_type",
                "must be a dotted lower-case past-tense name such as billing.payment_authorized")
        }

        let schemaVersionField = try Self.required(schemaVersionValue, "schema_version")
        guard case .number(let number) = schemaVersionField, let exact = number.int64Value, exact >= 1 else {
            throw Self.invalid(.envelopeFieldInvalid, "schema_version", "must be an integer ≥ 1")
        }
        let schemaVersion = Int(exact)

        let occurredAtField = try Self.required(occurredAtValue, "occurred_at")
        guard case .string(let occurredAtText) = occurredAtField,
            let occurredAt = RFC3339Timestamp(occurredAtText)
        else {
            throw Self.invalid(
                .envelopeFieldInvalid, "occurred_at", "must be an RFC 3339 timestamp such as 2025-01-31T12:00:00Z")
        }

        let producerField = try Self.required(producerValue, "producer")
        guard case .string(let producer) = producerField, !producer.isEmpty else {
            throw Self.invalid(.envelopeFieldMissing, "producer", "must be a non-empty string")
        }

        let correlationIDField = try Self.required(correlationIDValue, "correlation_id")
        guard case .string(let correlationID) = correlationIDField,
            EnvelopeRules.isValidIdentifier(correlationID)
        else {
            throw Self.invalid(
                .causationInvalid, "correlation_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }

        let causationIDField = try Self.required(causationIDValue, "causation_id")
        guard case .string(let causationID) = causationIDField, EnvelopeRules.isValidIdentifier(causationID)
        else {
            throw Self.invalid(
                .causationInvalid, "causation_id", "must be a string of 1–128 characters of [A-Za-z0-9._:-]")
        }
        guard causationID != eventID else {
            throw Self.invalid(.causationInvalid, "causation_id", "must differ from event_id (an event cannot cause itself)")
        }

        let subjectField = try Self.required(subjectValue, "subject")
        guard case .string(let subject) = subjectField, !subject.isEmpty else {
            throw Self.invalid(.envelopeFieldMissing, "subject", "must be a non-empty string such as invoice:inv_456")
        }

        let data = try Self.required(dataValue, "data")
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

    @inline(__always)
    private static func required(_ value: JSONValue?, _ field: StaticString) throws(SluiceError) -> JSONValue {
        guard let value, !value.isNull else {
            throw SluiceError(
                code: .envelopeFieldMissing, message: "the required field \(field) is missing", path: "/\(field)")
        }
        return value
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
