import Instrumentation
import Tracing

/// The tracer a pipeline records its spans with, and the instrument that reads and writes trace
/// context in record headers; absent when no tracer is set up, so an untraced pipeline pays one
/// `nil` check per record and per handler call.
struct PipelineTracing: Sendable {
    let tracer: any Tracer
    /// Reads a record's `traceparent`/`tracestate` and writes `sluice.traceparent`: the
    /// bootstrapped instrument (which may multiplex the tracer with other propagators), or the
    /// tracer itself when one was configured explicitly.
    let instrument: any Instrument

    /// Tracing with `tracer`, or with the process's bootstrapped tracer and instrument when it is
    /// `nil`; `nil` when that tracer is the no-op one.
    init?(tracer: (any Tracer)?) {
        if let tracer {
            guard !(tracer is NoOpTracer) else { return nil }
            self.tracer = tracer
            self.instrument = tracer
        } else {
            let bootstrapped = InstrumentationSystem.tracer
            guard !(bootstrapped is NoOpTracer) else { return nil }
            self.tracer = bootstrapped
            self.instrument = InstrumentationSystem.instrument
        }
    }

    /// Starts `record`'s `sluice.process` span, a child of the trace in its headers when they
    /// carry one, a new trace otherwise.
    func startSpan(for record: Record) -> RecordSpan {
        var parent = ServiceContext.topLevel
        instrument.extract(record.headers, into: &parent, using: RecordHeaderExtractor())
        let span = tracer.startSpan(RecordSpan.processName, context: parent, ofKind: .consumer)
        span.attributes[RecordSpan.Attribute.topic] = record.topic
        span.attributes[RecordSpan.Attribute.partition] = Int64(record.partition)
        span.attributes[RecordSpan.Attribute.offset] = record.offset.rawValue
        return RecordSpan(span: span, tracing: self)
    }
}

/// A record's `sluice.process` span, from the moment the pipeline takes the record until its
/// outcome is durable, with a child span per call of a handler.
///
/// A class so that the record's log metadata, which carries it and is copied for every handler
/// call, grows by one reference only.
final class RecordSpan: Sendable {
    /// The record's span.
    static let processName = "sluice.process"
    /// A handler attempt's span: `sluice.handle <handler name>`.
    static func handleName(_ handler: String) -> String { "sluice.handle \(handler)" }

    /// The attribute names, the same keys as the record's log metadata.
    enum Attribute {
        static let topic = "kafka.topic"
        static let partition = "kafka.partition"
        static let offset = "kafka.offset"
        static let eventID = "event.id"
        static let eventType = "event.type"
        static let correlationID = "correlation.id"
        static let causationID = "causation.id"
        static let outcome = "sluice.outcome"
        static let errorCode = "sluice.error.code"
        static let handler = "sluice.handler"
        static let attempt = "sluice.attempt"
    }

    let span: any Span
    let tracing: PipelineTracing

    init(span: any Span, tracing: PipelineTracing) {
        self.span = span
        self.tracing = tracing
    }

    /// Adds the envelope's identifiers once the record decoded (a rejected record's span has none).
    func decoded(_ envelope: Envelope) {
        span.attributes[Attribute.eventID] = envelope.eventID
        span.attributes[Attribute.eventType] = envelope.eventType
        span.attributes[Attribute.correlationID] = envelope.correlationID
        span.attributes[Attribute.causationID] = envelope.causationID
    }

    /// Ends the span with the record's outcome (`sluice.outcome`, and `sluice.error.code` for a
    /// dead letter or a skip; `parked` for a record appended to its parked key's sequence); a
    /// dead-lettered record's span has status error.
    func end(_ outcome: RecordOutcome) {
        switch outcome {
        case .handled:
            span.attributes[Attribute.outcome] = "handled"
        case .duplicate:
            span.attributes[Attribute.outcome] = "duplicate"
        case .deadLettered(let code):
            span.attributes[Attribute.outcome] = "dead_lettered"
            span.attributes[Attribute.errorCode] = code.rawValue
            span.setStatus(SpanStatus(code: .error, message: code.rawValue))
        case .skipped(let code):
            span.attributes[Attribute.outcome] = "skipped"
            span.attributes[Attribute.errorCode] = code.rawValue
        case .abandoned:
            span.attributes[Attribute.outcome] = "abandoned"
        case .parked:
            span.attributes[Attribute.outcome] = "parked"
        }
        span.end()
    }

    /// Runs one call of handler `handler` inside a child span, with the child's context bound as
    /// `ServiceContext.current` and handed to `body` (for the handler's ``HandlerContext``).
    func attempt(
        handler: String, attempt: Int, _ body: (ServiceContext) async throws -> Void
    ) async throws {
        let child = tracing.tracer.startSpan(Self.handleName(handler), context: span.context, ofKind: .internal)
        child.attributes[Attribute.handler] = handler
        child.attributes[Attribute.attempt] = Int64(attempt)
        defer { child.end() }
        do {
            try await ServiceContext.$current.withValue(child.context) { try await body(child.context) }
        } catch {
            child.recordError(error)
            child.setStatus(SpanStatus(code: .error))
            throw error
        }
    }

    /// The record span's context as the instrument writes it in a W3C `traceparent` header, for
    /// a dead letter's `sluice.traceparent`; `nil` when the instrument does not write one.
    func traceParent() -> String? {
        var carrier: [String: String] = [:]
        tracing.instrument.inject(span.context, into: &carrier, using: DictionaryInjector())
        return carrier["traceparent"]
    }
}

/// Reads trace context from a record's headers: the last header of a name wins, as in
/// ``Record/header(_:)``.
struct RecordHeaderExtractor: Extractor {
    func extract(key: String, from headers: [RecordHeader]) -> String? {
        guard let value = headers.last(where: { $0.name == key })?.value else { return nil }
        return String(decoding: value, as: UTF8.self)
    }
}

/// Collects what an instrument injects, by header name.
private struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

extension EventRouter.Route.Bound {
    /// Calls the handler with `context`: one attempt, in a child span of the record's
    /// `sluice.process` span when the pipeline traces.
    func attempt(_ context: HandlerContext<Transaction>) async throws {
        guard let span = context.log.span else { return try await call(context) }
        try await span.attempt(handler: name, attempt: context.attempt) { serviceContext in
            var context = context
            context.serviceContext = serviceContext
            try await call(context)
        }
    }
}
