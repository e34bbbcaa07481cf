// libFuzzer entry point for the envelope decoder, the snapshot line reader and the RFC 3339
// parser. Built by `Fuzz/run-envelope-fuzz.sh` together with the Sluice module's sources (it
// is not a SwiftPM target: `-sanitize=fuzzer` must not reach the other targets' `main`s).
//
// Besides "does not crash", it checks invariants a crash-only fuzzer would miss:
// - a decoded envelope's event_id and causation_id pass their own rules and differ;
// - a snapshot line that reads as a record writes back to a line that reads as the same record.

/// A registry with one small schema, built once: the fuzzer reaches payload validation too.
let fuzzDecoder: EnvelopeDecoder = {
    let schemaText = """
        {"type":"object","required":["order_id","amount_minor","currency"],
         "properties":{"order_id":{"type":"string","pattern":"^ord_[A-Za-z0-9]{1,32}$"},
         "amount_minor":{"type":"integer","minimum":0},"currency":{"enum":["EUR","USD"]},
         "items":{"type":"array","maxItems":4,"items":{"type":"object",
         "properties":{"sku":{"type":"string","maxLength":8}}}}}}
        """
    var registry = SchemaRegistry()
    do throws(SluiceError) {
        try registry.register(eventType: "billing.payment_authorized", version: 1, schemaText: schemaText)
    } catch {
        preconditionFailure("the fuzz schema is refused: \(error)")
    }
    return EnvelopeDecoder(registry: registry, limits: EnvelopeLimits(maxValueBytes: 64 << 10, maxDepth: 16))
}()

@_cdecl("LLVMFuzzerTestOneInput")
public func envelopeDecoderFuzz(_ start: UnsafePointer<UInt8>, _ count: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: start, count: count))

    switch fuzzDecoder.result(decoding: bytes) {
    case .success(let envelope):
        precondition(EnvelopeRules.isValidIdentifier(envelope.eventID))
        precondition(EnvelopeRules.isValidIdentifier(envelope.causationID))
        precondition(envelope.eventID != envelope.causationID)
        precondition(RFC3339Timestamp(envelope.occurredAt.text) == envelope.occurredAt)
    case .failure(let error):
        precondition(!error.isRetriable)
    }

    do throws(SluiceError) {
        let record = try SnapshotRecordCoding.decode(line: bytes)
        let line = SnapshotRecordCoding.encode(record)
        let again = try SnapshotRecordCoding.decode(line: line)
        precondition(again == record, "snapshot round trip changed the record: \(line)")
        precondition(SnapshotRecordCoding.encode(again) == line, "snapshot re-encoding is not stable")
    } catch {
        // Most inputs are not snapshot lines; being refused with a code is the expected outcome.
        precondition(error.code == .snapshotLineInvalid)
    }

    if let text = String(validating: bytes, as: UTF8.self), let timestamp = RFC3339Timestamp(text) {
        precondition(timestamp.nanoseconds >= 0 && timestamp.nanoseconds < 1_000_000_000)
    }
    return 0
}
