import Foundation
import SluiceContracts
import SluiceTestFixtures
import Testing

/// The handler's view of `billing.payment_authorized` v2; snake_case JSON needs `CodingKeys`.
struct PaymentAuthorized: Decodable, Sendable, Equatable {
    enum CaptureMode: String, Decodable, Sendable { case automatic, manual }

    var paymentID: String
    var orderID: String
    var amountMinor: Int64
    var currency: String
    var authorizedAt: RFC3339Timestamp
    var cardLast4: String?
    var captureMode: CaptureMode
    var riskScore: Double?

    enum CodingKeys: String, CodingKey {
        case paymentID = "payment_id"
        case orderID = "order_id"
        case amountMinor = "amount_minor"
        case currency
        case authorizedAt = "authorized_at"
        case cardLast4 = "card_last4"
        case captureMode = "capture_mode"
        case riskScore = "risk_score"
    }
}

@Suite("Upcasters and typed payloads")
struct UpcasterTests {
    typealias Fixtures = EnvelopeTestFixtures

    /// v1 → v2: v1 payments were always captured automatically.
    static let addCaptureMode = Upcaster(eventType: "billing.payment_authorized", fromVersion: 1) { data in
        guard case .object(var object) = data else { return data }
        object.members.append((key: "capture_mode", value: .string("automatic")))
        return .object(object)
    }

    let registry: SchemaRegistry
    let decoder: EnvelopeDecoder

    init() throws {
        registry = try Fixtures.registry()
        decoder = EnvelopeDecoder(registry: registry)
    }

    @Test("a v1 event is upcast to v2 and decoded into the v2 payload type")
    func upcastAndDecode() throws {
        let chain = try UpcasterChain(registry: registry, upcasters: [Self.addCaptureMode])
        let envelope = try decoder.decode(Fixtures.envelope())
        #expect(envelope.schemaVersion == 1)
        let event = try chain.event(envelope, as: PaymentAuthorized.self, version: 2)
        #expect(event.schemaVersion == 2)
        #expect(event.originalSchemaVersion == 1)
        #expect(event.wasUpcast)
        #expect(event.eventID == "evt_01J9ZK3M7Q")
        #expect(event.payload.captureMode == .automatic)
        #expect(event.payload.amountMinor == 129_900)
        #expect(event.payload.authorizedAt.secondsSinceEpoch == 1_738_324_800)
        #expect(event.payload.cardLast4 == nil)
    }

    @Test("without a version the newest registered one is the target")
    func newestByDefault() throws {
        let chain = try UpcasterChain(registry: registry, upcasters: [Self.addCaptureMode])
        let event = try chain.event(try decoder.decode(Fixtures.envelope()), as: PaymentAuthorized.self)
        #expect(event.schemaVersion == 2)
    }

    @Test("an event already at the target version is decoded as is")
    func noUpcastNeeded() throws {
        let chain = try UpcasterChain(registry: registry)
        let bytes = Fixtures.envelope([
            "schema_version": 2,
            "data": [
                "payment_id": "pay_8f3k2j1h0g", "order_id": "ord_7d6c5b4a3z", "amount_minor": 5,
                "currency": "USD", "authorized_at": "2025-01-31T12:00:00Z", "capture_mode": "manual",
                "risk_score": 12.5,
            ] as [String: Any],
        ])
        let event = try chain.event(try decoder.decode(bytes), as: PaymentAuthorized.self, version: 2)
        #expect(!event.wasUpcast)
        #expect(event.payload.captureMode == .manual)
        #expect(event.payload.riskScore == 12.5)
    }

    @Test("no upcaster for a step is UPCAST_PATH_MISSING")
    func pathMissing() throws {
        let chain = try UpcasterChain(registry: registry)
        let envelope = try decoder.decode(Fixtures.envelope())
        do throws(SluiceError) {
            _ = try chain.event(envelope, as: PaymentAuthorized.self, version: 2)
            Issue.record("expected UPCAST_PATH_MISSING")
        } catch {
            #expect(error.code == .upcastPathMissing)
            #expect(!error.isRetriable)
            #expect(error.path == "/schema_version")
        }
        #expect(!chain.canUpcast("billing.payment_authorized", from: 1, to: 2))
    }

    @Test("an event newer than the handler accepts is UPCAST_PATH_MISSING")
    func tooNew() throws {
        let chain = try UpcasterChain(registry: registry, upcasters: [Self.addCaptureMode])
        var envelope = try decoder.decode(Fixtures.envelope())
        envelope.schemaVersion = 2
        #expect(throws: SluiceError.self) { try chain.upcast(envelope, to: 1) }
    }

    @Test("upcaster output that breaks the target schema is UPCAST_FAILED with the path")
    func invalidOutput() throws {
        let broken = Upcaster(eventType: "billing.payment_authorized", fromVersion: 1) { data in
            guard case .object(var object) = data else { return data }
            object.members.append((key: "capture_mode", value: .string("sometimes")))
            return .object(object)
        }
        let chain = try UpcasterChain(registry: registry, upcasters: [broken])
        do throws(SluiceError) {
            _ = try chain.upcast(try decoder.decode(Fixtures.envelope()), to: 2)
            Issue.record("expected UPCAST_FAILED")
        } catch {
            #expect(error.code == .upcastFailed)
            #expect(error.path == "/data/capture_mode")
        }
    }

    @Test("an upcaster that throws is UPCAST_FAILED")
    func throwingUpcaster() throws {
        struct Refused: Error {}
        let throwing = Upcaster(eventType: "billing.payment_authorized", fromVersion: 1) { _ in throw Refused() }
        let chain = try UpcasterChain(registry: registry, upcasters: [throwing])
        #expect(throws: SluiceError.self) { try chain.upcast(try decoder.decode(Fixtures.envelope()), to: 2) }
    }

    @Test("registration refuses duplicates and versions the registry lacks")
    func registration() throws {
        var chain = try UpcasterChain(registry: registry, upcasters: [Self.addCaptureMode])
        do throws(SluiceError) {
            try chain.register(Self.addCaptureMode)
            Issue.record("expected UPCASTER_DUPLICATE")
        } catch {
            #expect(error.code == .upcasterDuplicate)
        }
        let nowhere = Upcaster(eventType: "billing.payment_authorized", fromVersion: 2) { $0 }
        #expect(throws: SluiceError.self) { try chain.register(nowhere) }
    }

    @Test("a payload that does not fit the type is PAYLOAD_DECODING_FAILED with the path")
    func decodingFailure() throws {
        struct Strict: Decodable, Sendable {
            var amountMinor: Int8
            enum CodingKeys: String, CodingKey { case amountMinor = "amount_minor" }
        }
        struct NeedsField: Decodable, Sendable {
            var missing: String
        }
        let chain = try UpcasterChain(registry: registry)
        let envelope = try decoder.decode(Fixtures.envelope())
        do throws(SluiceError) {
            _ = try chain.event(envelope, as: Strict.self, version: 1)
            Issue.record("expected PAYLOAD_DECODING_FAILED")
        } catch {
            #expect(error.code == .payloadDecodingFailed)
            #expect(error.path == "/data/amount_minor")
        }
        do throws(SluiceError) {
            _ = try chain.event(envelope, as: NeedsField.self, version: 1)
            Issue.record("expected PAYLOAD_DECODING_FAILED")
        } catch {
            #expect(error.path == "/data/missing")
        }
    }

    @Test("JSONValueDecoder decodes nested containers, optionals, dates and untyped parts")
    func valueDecoder() throws {
        struct Order: Decodable, Equatable {
            struct Line: Decodable, Equatable {
                var sku: String
                var quantity: UInt16
            }
            var lines: [Line]
            var tags: Set<String>
            var note: String?
            var placedAt: Date
            var attributes: JSONValue
            var ratio: Float
            var flags: [Bool?]
            enum CodingKeys: String, CodingKey {
                case lines, tags, note, ratio, flags, attributes
                case placedAt = "placed_at"
            }
        }
        let value = try JSONParser.parse(
            #"{"lines":[{"sku":"A-1","quantity":2}],"tags":["x","y"],"note":null,"placed_at":"2025-01-31T12:00:00Z","#
                + #""attributes":{"gift":true},"ratio":0.5,"flags":[true,null,false]}"#)
        let order = try JSONValueDecoder().decode(Order.self, from: value)
        #expect(order.lines == [.init(sku: "A-1", quantity: 2)])
        #expect(order.tags == ["x", "y"])
        #expect(order.note == nil)
        #expect(order.placedAt == Date(timeIntervalSince1970: 1_738_324_800))
        #expect(order.attributes == .object(JSONObject([(key: "gift", value: .bool(true))])))
        #expect(order.ratio == 0.5)
        #expect(order.flags == [true, nil, false])

        #expect(throws: DecodingError.self) { try JSONValueDecoder().decode(UInt8.self, from: .number(JSONNumber(Int64(300)))) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder().decode(Int.self, from: .number(JSONNumber(1.5))) }
        #expect(throws: DecodingError.self) { try JSONValueDecoder().decode(String.self, from: .bool(true)) }
    }
}
