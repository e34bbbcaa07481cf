import Foundation
import SluiceContracts
import SluiceTestFixtures
import Testing

/// One test per rule of the contract's envelope table: the valid envelope passes, and each
/// broken variant yields exactly its code and JSON-pointer path, never retryable.
@Suite("Envelope decoder")
struct EnvelopeDecoderTests {
    typealias Fixtures = EnvelopeTestFixtures

    let decoder: EnvelopeDecoder

    init() throws {
        decoder = EnvelopeDecoder(registry: try Fixtures.registry())
    }

    /// The code and path `bytes` fail with; `nil` when they decode.
    func failure(_ bytes: [UInt8]?) -> (code: String, path: String?)? {
        switch decoder.result(decoding: bytes) {
        case .success:
            return nil
        case .failure(let error):
            #expect(!error.isRetriable, "\(error)")
            return (error.code.rawValue, error.path)
        }
    }

    @Test("a valid envelope decodes with every field")
    func validEnvelope() throws {
        let envelope = try decoder.decode(Fixtures.envelope())
        #expect(envelope.eventID == "evt_01J9ZK3M7Q")
        #expect(envelope.eventType == "billing.payment_authorized")
        #expect(envelope.schemaVersion == 1)
        #expect(envelope.occurredAt.text == "2025-01-31T12:00:00.123Z")
        #expect(envelope.occurredAt.secondsSinceEpoch == 1_738_324_800)
        #expect(envelope.occurredAt.nanoseconds == 123_000_000)
        #expect(envelope.producer == "billing-service")
        #expect(envelope.correlationID == "corr-42")
        #expect(envelope.causationID == "cmd:order:7")
        #expect(envelope.subject == "invoice:inv_456")
        guard case .object(let data) = envelope.data else {
            Issue.record("data is not an object")
            return
        }
        #expect(data["amount_minor"] == .number(JSONNumber(Int64(129900))))
    }

    @Test("unknown top-level fields are ignored")
    func unknownFieldsIgnored() {
        #expect(failure(Fixtures.envelope(["trace_id": "abc", "x": ["nested": [1, 2]]])) == nil)
    }

    @Test(
        "an absent required field is ENVELOPE_FIELD_MISSING at its path",
        arguments: [
            "event_id", "event_type", "schema_version", "occurred_at", "producer", "correlation_id",
            "causation_id", "subject", "data",
        ])
    func absentField(_ field: String) throws {
        let result = try #require(failure(Fixtures.envelope([field: Fixtures.absent])))
        #expect(result.code == "ENVELOPE_FIELD_MISSING")
        #expect(result.path == "/\(field)")
    }

    @Test(
        "a null required field counts as absent",
        arguments: ["event_id", "event_type", "schema_version", "occurred_at", "subject", "data"])
    func nullField(_ field: String) throws {
        let result = try #require(failure(Fixtures.envelope([field: NSNull()])))
        #expect(result.code == "ENVELOPE_FIELD_MISSING")
        #expect(result.path == "/\(field)")
    }

    @Test(
        "event_id: 1–128 characters of [A-Za-z0-9._:-], else EVENT_ID_INVALID",
        arguments: [
            ("", false), ("has space", false), ("évènement", false), ("a/b", false),
            (String(repeating: "a", count: 129), false), (String(repeating: "a", count: 128), true),
            ("A.z_0:9-x", true), ("1", true),
        ] as [(String, Bool)])
    func eventIDCharset(_ eventID: String, _ valid: Bool) throws {
        let result = failure(Fixtures.envelope(["event_id": eventID]))
        if valid {
            #expect(result == nil)
        } else {
            let result = try #require(result)
            #expect(result.code == "EVENT_ID_INVALID")
            #expect(result.path == "/event_id")
        }
    }

    @Test("event_id that is not a string is EVENT_ID_INVALID")
    func eventIDNotString() throws {
        let result = try #require(failure(Fixtures.envelope(["event_id": 42])))
        #expect(result.code == "EVENT_ID_INVALID")
        #expect(result.path == "/event_id")
    }

    @Test(
        "event_type: dotted lower-case past tense, else ENVELOPE_FIELD_INVALID",
        arguments: [
            "Billing.payment_authorized", "billing", "billing.payment_authorize", "billing..payment_authorized",
            "billing.payment-authorized", "billing.", ".payment_authorized", "billing.ed", "billing.1_placed",
            "billing payment_authorized",
        ])
    func eventTypeInvalid(_ eventType: String) throws {
        let result = try #require(failure(Fixtures.envelope(["event_type": eventType])))
        #expect(result.code == "ENVELOPE_FIELD_INVALID")
        #expect(result.path == "/event_type")
    }

    @Test("event_type rule accepts realistic names")
    func eventTypeValidNames() {
        for name in ["billing.payment_authorized", "orders.order_placed", "a.b.c2_shipped", "x.y_ed"] {
            #expect(EnvelopeRules.isValidEventType(name), "\(name)")
        }
    }

    @Test("event_type that is not a string is ENVELOPE_FIELD_INVALID")
    func eventTypeNotString() throws {
        let result = try #require(failure(Fixtures.envelope(["event_type": ["billing"]])))
        #expect(result.code == "ENVELOPE_FIELD_INVALID")
        #expect(result.path == "/event_type")
    }

    @Test(
        "schema_version: an integer ≥ 1, else ENVELOPE_FIELD_INVALID",
        arguments: ["\"2\"", "0", "-1", "1.5", "true", "[1]"])
    func schemaVersionInvalid(_ literal: String) throws {
        let bytes = Array(
            String(decoding: Fixtures.envelope(), as: UTF8.self)
                .replacingOccurrences(of: "\"schema_version\":1", with: "\"schema_version\":\(literal)").utf8)
        let result = try #require(failure(bytes))
        #expect(result.code == "ENVELOPE_FIELD_INVALID")
        #expect(result.path == "/schema_version")
    }

    @Test("schema_version 2.0 is the integer 2, as in JSON Schema")
    func schemaVersionIntegralDouble() throws {
        let bytes = Array(
            String(decoding: Fixtures.envelope(), as: UTF8.self)
                .replacingOccurrences(of: "\"schema_version\":1", with: "\"schema_version\":2.0").utf8)
        #expect(try decoder.decode(bytes).schemaVersion == 2)
    }

    @Test("an unregistered schema_version is SCHEMA_VERSION_UNSUPPORTED")
    func schemaVersionUnregistered() throws {
        let result = try #require(failure(Fixtures.envelope(["schema_version": 9])))
        #expect(result.code == "SCHEMA_VERSION_UNSUPPORTED")
        #expect(result.path == "/schema_version")
    }

    @Test("an unregistered event_type is EVENT_TYPE_UNKNOWN")
    func eventTypeUnknown() throws {
        let result = try #require(failure(Fixtures.envelope(["event_type": "billing.refund_issued"])))
        #expect(result.code == "EVENT_TYPE_UNKNOWN")
        #expect(result.path == "/event_type")
    }

    @Test(
        "occurred_at: an RFC 3339 timestamp, else ENVELOPE_FIELD_INVALID",
        arguments: [
            "2025-01-31", "2025-02-30T12:00:00Z", "2025-01-31 12:00:00Z", "2025-01-31T24:00:00Z",
            "2025-01-31T12:00:00", "2025-01-31T12:00:00.Z", "2025-01-31T12:00:00+2:00", "yesterday", "",
        ])
    func occurredAtInvalid(_ text: String) throws {
        let result = try #require(failure(Fixtures.envelope(["occurred_at": text])))
        #expect(result.code == "ENVELOPE_FIELD_INVALID")
        #expect(result.path == "/occurred_at")
    }

    @Test("occurred_at as epoch seconds is ENVELOPE_FIELD_INVALID")
    func occurredAtNumber() throws {
        let result = try #require(failure(Fixtures.envelope(["occurred_at": 1_738_324_800])))
        #expect(result.code == "ENVELOPE_FIELD_INVALID")
        #expect(result.path == "/occurred_at")
    }

    @Test("producer: a non-empty string, else ENVELOPE_FIELD_MISSING", arguments: [0, 1])
    func producerBroken(_ variant: Int) throws {
        let value: Any = variant == 0 ? "" : 7
        let result = try #require(failure(Fixtures.envelope(["producer": value])))
        #expect(result.code == "ENVELOPE_FIELD_MISSING")
        #expect(result.path == "/producer")
    }

    @Test("correlation_id: identifier charset, else CAUSATION_INVALID", arguments: ["", "a b", "x/y"])
    func correlationIDInvalid(_ value: String) throws {
        let result = try #require(failure(Fixtures.envelope(["correlation_id": value])))
        #expect(result.code == "CAUSATION_INVALID")
        #expect(result.path == "/correlation_id")
    }

    @Test("causation_id: identifier charset, else CAUSATION_INVALID", arguments: ["", "a b", "ü"])
    func causationIDInvalid(_ value: String) throws {
        let result = try #require(failure(Fixtures.envelope(["causation_id": value])))
        #expect(result.code == "CAUSATION_INVALID")
        #expect(result.path == "/causation_id")
    }

    @Test("causation_id equal to event_id is CAUSATION_INVALID")
    func causationIsSelf() throws {
        let result = try #require(failure(Fixtures.envelope(["causation_id": "evt_01J9ZK3M7Q"])))
        #expect(result.code == "CAUSATION_INVALID")
        #expect(result.path == "/causation_id")
    }

    @Test("correlation_id may equal event_id (the first event of a flow)")
    func correlationMayEqualEventID() {
        #expect(failure(Fixtures.envelope(["correlation_id": "evt_01J9ZK3M7Q"])) == nil)
    }

    @Test("subject: a non-empty string, else ENVELOPE_FIELD_MISSING", arguments: [0, 1])
    func subjectBroken(_ variant: Int) throws {
        let value: Any = variant == 0 ? "" : ["invoice", "inv_456"]
        let result = try #require(failure(Fixtures.envelope(["subject": value])))
        #expect(result.code == "ENVELOPE_FIELD_MISSING")
        #expect(result.path == "/subject")
    }

    @Test("data that is not an object is PAYLOAD_SCHEMA_VIOLATION at /data")
    func dataNotObject() throws {
        let result = try #require(failure(Fixtures.envelope(["data": [1, 2]])))
        #expect(result.code == "PAYLOAD_SCHEMA_VIOLATION")
        #expect(result.path == "/data")
    }

    @Test("a payload violation's path is the validator's instance path under /data")
    func payloadViolationPath() throws {
        let negative = try #require(failure(Fixtures.envelope(data: ["amount_minor": -1])))
        #expect(negative.code == "PAYLOAD_SCHEMA_VIOLATION")
        #expect(negative.path == "/data/amount_minor")

        let text = try #require(failure(Fixtures.envelope(data: ["amount_minor": "12.00"])))
        #expect(text.path == "/data/amount_minor")

        let currency = try #require(failure(Fixtures.envelope(data: ["currency": "euro"])))
        #expect(currency.code == "PAYLOAD_SCHEMA_VIOLATION")
        #expect(currency.path == "/data/currency")

        let missing = try #require(failure(Fixtures.envelope(data: ["currency": Fixtures.absent])))
        #expect(missing.code == "PAYLOAD_SCHEMA_VIOLATION")
        #expect(missing.path?.hasPrefix("/data") == true)
    }

    @Test("a value that is absent, not JSON, or not an object is ENVELOPE_NOT_JSON")
    func notJSON() throws {
        #expect(failure(nil)?.code == "ENVELOPE_NOT_JSON")
        #expect(failure([])?.code == "ENVELOPE_NOT_JSON")
        #expect(failure(Array("not json".utf8))?.code == "ENVELOPE_NOT_JSON")
        #expect(failure(Array("{\"event_id\":".utf8))?.code == "ENVELOPE_NOT_JSON")
        #expect(failure([0x7B, 0x22, 0xFF, 0x22, 0x3A, 0x31, 0x7D])?.code == "ENVELOPE_NOT_JSON")
        let array = try #require(failure(Array("[1,2]".utf8)))
        #expect(array.code == "ENVELOPE_NOT_JSON")
        #expect(array.path == "")
        #expect(failure(Array("\"an envelope\"".utf8))?.code == "ENVELOPE_NOT_JSON")
        #expect(failure(Array("null".utf8))?.code == "ENVELOPE_NOT_JSON")
    }

    @Test("a value over the size, depth or string-length limit is ENVELOPE_TOO_LARGE")
    func tooLarge() throws {
        let small = EnvelopeDecoder(
            registry: decoder.registry,
            limits: EnvelopeLimits(maxValueBytes: 2000, maxDepth: 8, maxStringLength: 200))
        #expect(small.result(decoding: Fixtures.envelope()).isSuccess)

        let padded = Fixtures.envelope(["padding": String(repeating: "x", count: 190), "more": String(repeating: "y", count: 1900)])
        #expect(small.result(decoding: padded).failureCode == "ENVELOPE_TOO_LARGE")

        let longString = Fixtures.envelope(["subject": String(repeating: "s", count: 300)])
        #expect(small.result(decoding: longString).failureCode == "ENVELOPE_TOO_LARGE")

        var nested: Any = 1
        for _ in 0..<10 { nested = [nested] }
        let deep = Fixtures.envelope(["extension": nested])
        #expect(small.result(decoding: deep).failureCode == "ENVELOPE_TOO_LARGE")
    }

    @Test("the default limits: 1 MiB, depth 32")
    func defaultLimits() {
        #expect(EnvelopeLimits.default.maxValueBytes == 1_048_576)
        #expect(EnvelopeLimits.default.maxDepth == 32)
        let oversized = Fixtures.envelope(["padding": String(repeating: "x", count: 1_048_576)])
        #expect(failure(oversized)?.code == "ENVELOPE_TOO_LARGE")
    }

    @Test("precedence: structure, then fields in contract order, then schema lookup, then payload")
    func precedence() throws {
        // Every field broken: the first in contract order wins.
        var everything: [String: Any] = [
            "event_id": "bad id", "event_type": "Bad", "schema_version": "x", "occurred_at": "never",
            "producer": "", "correlation_id": "a b", "causation_id": "a b", "subject": "", "data": [1],
        ]
        let order: [(String, String)] = [
            ("event_id", "EVENT_ID_INVALID"), ("event_type", "ENVELOPE_FIELD_INVALID"),
            ("schema_version", "ENVELOPE_FIELD_INVALID"), ("occurred_at", "ENVELOPE_FIELD_INVALID"),
            ("producer", "ENVELOPE_FIELD_MISSING"), ("correlation_id", "CAUSATION_INVALID"),
            ("causation_id", "CAUSATION_INVALID"), ("subject", "ENVELOPE_FIELD_MISSING"),
            ("data", "PAYLOAD_SCHEMA_VIOLATION"),
        ]
        for (field, code) in order {
            let result = try #require(failure(Fixtures.json(everything)))
            #expect(result.code == code, "expected \(field) first")
            #expect(result.path == "/\(field)")
            everything[field] = Fixtures.validFields()[field]
        }
        #expect(failure(Fixtures.json(everything)) == nil)

        // Field rules before the schema lookup; the lookup before the payload.
        let unknownTypeBadCausation = Fixtures.envelope([
            "event_type": "billing.refund_issued", "causation_id": "evt_01J9ZK3M7Q",
        ])
        #expect(failure(unknownTypeBadCausation)?.code == "CAUSATION_INVALID")
        let unknownTypeBadPayload = Fixtures.envelope([
            "event_type": "billing.refund_issued", "data": ["amount_minor": -1],
        ])
        #expect(failure(unknownTypeBadPayload)?.code == "EVENT_TYPE_UNKNOWN")
        let unknownVersionBadPayload = Fixtures.envelope(["schema_version": 7, "data": ["x": 1]])
        #expect(failure(unknownVersionBadPayload)?.code == "SCHEMA_VERSION_UNSUPPORTED")
    }

    @Test("the decoder also accepts an already-parsed document")
    func decodeDocument() throws {
        let document = try JSONParser.parse(Fixtures.envelope())
        #expect(try decoder.decode(document: document).eventID == "evt_01J9ZK3M7Q")
    }
}

extension Result where Failure == SluiceError {
    var isSuccess: Bool {
        if case .success = self { return true }
        return false
    }

    var failureCode: String? {
        if case .failure(let error) = self { return error.code.rawValue }
        return nil
    }
}
