// libFuzzer entry point for the envelope decoder, the snapshot line reader and the RFC 3339
// parser, built from the SluiceContracts module alone. `Fuzz/run-envelope-fuzz.sh` builds this
// product with `-sanitize=fuzzer,address -D SLUICE_FUZZING`, where `main` hands over to
// libFuzzer's driver; in an ordinary build `main` replays files through the same checks.
//
// Besides "does not crash", it checks invariants a crash-only fuzzer would miss:
// - a decoded envelope's event_id and causation_id pass their own rules and differ;
// - a snapshot line that reads as a record writes back to a line that reads as the same record.

import CLibFuzzer
import Foundation
import SluiceContracts

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

#if SLUICE_FUZZING
/// libFuzzer's driver runs the fuzzing loop with its usual flags (SwiftPM names every
/// executable's `main` itself, so libFuzzer's own `main` cannot be used).
@main
struct EnvelopeFuzzer {
    static func main() {
        var argc = CommandLine.argc
        var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
        exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
            envelopeDecoderFuzz(data ?? UnsafePointer(bitPattern: 1)!, size)
        })
    }
}
#else
/// Without libFuzzer: runs every file named on the command line (or every file of a directory
/// named there) through ``envelopeDecoderFuzz(_:_:)``, so seeds and saved crashes are regression
/// inputs. Exits 0 when every invariant held (a failed one traps), and says how many ran.
@main
struct EnvelopeFuzzReplayer {
    static func main() throws {
        var files: [URL] = []
        for argument in CommandLine.arguments.dropFirst() {
            let url = URL(fileURLWithPath: argument)
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: url.path, isDirectory: &isDirectory) else {
                throw ReplayError(message: "no such file: \(argument)")
            }
            if isDirectory.boolValue {
                let names = try FileManager.default.contentsOfDirectory(atPath: url.path).sorted()
                files += names.map { url.appendingPathComponent($0) }
            } else {
                files.append(url)
            }
        }
        for file in files {
            let bytes = Array(try Data(contentsOf: file))
            _ = bytes.withUnsafeBufferPointer { buffer in
                envelopeDecoderFuzz(buffer.baseAddress ?? UnsafePointer(bitPattern: 1)!, buffer.count)
            }
        }
        print("replayed \(files.count) input(s); every invariant held")
    }

    struct ReplayError: Error, CustomStringConvertible {
        var message: String
        var description: String { message }
    }
}
#endif
