import Foundation
import Sluice

/// Envelope decoding throughput: Sluice's full decode against Foundation's parse alone.
///
/// Both run on the same ~400-byte envelope, in one process, one core. Foundation's
/// `JSONSerialization` only parses; Sluice parses, applies every envelope rule, looks the schema
/// up and validates the payload, so a ratio above 1 means the whole decode is faster than
/// Foundation's parse alone. Goal: ≥ 250,000 full decodes per second.
enum EnvelopeBenchmark {
    /// The payload schema: the shape of `billing.payment_authorized` v2 in `EventSchemas`.
    static let schemaText = """
        {"type":"object","required":["payment_id","order_id","amount_minor","currency","authorized_at"],
         "properties":{
           "payment_id":{"type":"string","pattern":"^pay_[A-Za-z0-9]{6,32}$"},
           "order_id":{"$ref":"#/$defs/order_id"},
           "amount_minor":{"type":"integer","minimum":0},
           "currency":{"$ref":"#/$defs/currency"},
           "authorized_at":{"type":"string","format":"date-time"},
           "card_last4":{"type":"string","pattern":"^[0-9]{4}$"},
           "capture_mode":{"type":"string","enum":["automatic","manual"]},
           "risk_score":{"type":"number","minimum":0,"maximum":100}},
         "$defs":{"order_id":{"type":"string","pattern":"^ord_[A-Za-z0-9]{6,32}$"},
                  "currency":{"type":"string","pattern":"^[A-Z]{3}$"}}}
        """

    /// A realistic envelope of about 400 bytes.
    static let envelopeText = """
        {"event_id":"evt_01J9ZK3M7Q8R2T4V","event_type":"billing.payment_authorized",\
        "schema_version":2,"occurred_at":"2025-01-31T12:00:00.123Z","producer":"billing",\
        "correlation_id":"corr_01J9ZK3M7Q","causation_id":"cmd_01J9ZK3M7Q",\
        "subject":"invoice:inv_456","data":{"payment_id":"pay_8f3k2j1h0g","order_id":"ord_7d6c5b4a3z",\
        "amount_minor":129900,"currency":"EUR","authorized_at":"2025-01-31T12:00:00Z",\
        "capture_mode":"automatic"}}
        """

    /// Runs both measurements `iterations` times each and returns a readable report.
    static func run(iterations: Int) -> String {
        let bytes = Array(envelopeText.utf8)
        let data = Data(bytes)
        var registry = SchemaRegistry()
        do throws(SluiceError) {
            try registry.register(eventType: "billing.payment_authorized", version: 2, schemaText: schemaText)
        } catch {
            return "envelope benchmark: the schema is refused: \(error)"
        }
        let decoder = EnvelopeDecoder(registry: registry)
        do throws(SluiceError) {
            _ = try decoder.decode(bytes)
        } catch {
            return "envelope benchmark: the sample envelope is refused: \(error)"
        }

        let warmup = max(iterations / 10, 1)
        var foundationFailures = 0
        let foundation = measure(iterations: iterations, warmup: warmup) {
            do {
                _ = try JSONSerialization.jsonObject(with: data)
            } catch {
                foundationFailures += 1
            }
        }
        var sluiceFailures = 0
        let sluice = measure(iterations: iterations, warmup: warmup) {
            if case .failure = decoder.result(decoding: bytes) { sluiceFailures += 1 }
        }

        let foundationRate = Double(iterations) / foundation
        let sluiceRate = Double(iterations) / sluice
        return """
            envelope decode (\(bytes.count)-byte envelope, \(iterations) iterations, one core)
              Foundation JSONSerialization, parse only:      \(format(foundationRate)) envelopes/s \
            (\(format(foundation / Double(iterations) * 1e9)) ns each)\(foundationFailures > 0 ? " FAILURES: \(foundationFailures)" : "")
              Sluice EnvelopeDecoder, parse + rules + schema: \(format(sluiceRate)) envelopes/s \
            (\(format(sluice / Double(iterations) * 1e9)) ns each)\(sluiceFailures > 0 ? " FAILURES: \(sluiceFailures)" : "")
              ratio Sluice full decode / Foundation parse:   \(String(format: "%.2f", sluiceRate / foundationRate))x
              goal ≥ 250,000 full decodes/s:                  \(sluiceRate >= 250_000 ? "met" : "MISSED")
            """
    }

    /// Seconds taken by `iterations` calls of `body`, after `warmup` untimed calls.
    private static func measure(iterations: Int, warmup: Int, _ body: () -> Void) -> Double {
        for _ in 0..<warmup { body() }
        let clock = ContinuousClock()
        let elapsed = clock.measure {
            for _ in 0..<iterations { body() }
        }
        let components = elapsed.components
        return Double(components.seconds) + Double(components.attoseconds) / 1e18
    }

    private static func format(_ value: Double) -> String {
        let formatter = NumberFormatter()
        formatter.numberStyle = .decimal
        formatter.maximumFractionDigits = 0
        return formatter.string(from: NSNumber(value: value)) ?? String(Int(value))
    }
}
