import InMemoryTracing
import Tracing

/// An `InMemoryTracer` that propagates its span contexts as W3C `traceparent` headers, as a
/// production tracer does (`InMemoryTracer` writes its own `in-memory-*` keys instead).
///
/// Only what the pipeline's tests need: `00-<32 hex trace id>-<16 hex span id>-<flags>`, read
/// and written; `tracestate` is ignored.
struct W3CInMemoryTracer: Tracer {
    let recorded = InMemoryTracer(idGenerator: .init(
        nextTraceID: { hex(UInt64.random(in: 1...UInt64.max)) + hex(UInt64.random(in: 1...UInt64.max)) },
        nextSpanID: { hex(UInt64.random(in: 1...UInt64.max)) }))

    /// The spans that ended.
    var finishedSpans: [FinishedInMemorySpan] { recorded.finishedSpans }

    func startSpan<Instant: TracerInstant>(
        _ operationName: String, context: @autoclosure () -> ServiceContext, ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant, function: String, file fileID: String, line: UInt
    ) -> InMemorySpan {
        recorded.startSpan(operationName, context: context(), ofKind: kind, at: instant(), function: function, file: fileID, line: line)
    }

    func forceFlush() { recorded.forceFlush() }

    func inject<Carrier, Inject: Injector>(_ context: ServiceContext, into carrier: inout Carrier, using injector: Inject)
    where Inject.Carrier == Carrier {
        guard let span = context.inMemorySpanContext else { return }
        injector.inject(Self.traceParent(traceID: span.traceID, spanID: span.spanID), forKey: "traceparent", into: &carrier)
    }

    func extract<Carrier, Extract: Extractor>(_ carrier: Carrier, into context: inout ServiceContext, using extractor: Extract)
    where Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: "traceparent", from: carrier) else { return }
        let fields = header.split(separator: "-", omittingEmptySubsequences: false)
        guard fields.count == 4, fields[0] == "00", fields[1].count == 32, fields[2].count == 16 else { return }
        context.inMemorySpanContext = InMemorySpanContext(traceID: String(fields[1]), spanID: String(fields[2]), parentSpanID: nil)
    }

    static func traceParent(traceID: String, spanID: String) -> String { "00-\(traceID)-\(spanID)-01" }
}

private func hex(_ value: UInt64) -> String {
    let digits = String(value, radix: 16)
    return String(repeating: "0", count: 16 - digits.count) + digits
}
