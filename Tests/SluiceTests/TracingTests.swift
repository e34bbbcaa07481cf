import Foundation
import InMemoryTracing
import Logging
import Sluice
import SluiceTesting
import Synchronization
import Testing
import Tracing

/// Traces that follow an event: a `sluice.process` span per record, a child of the trace in the
/// record's `traceparent`, with a `sluice.handle <handler>` span per call of a handler; the
/// handler's own context; the dead letter's `sluice.traceparent`. Each test hands the pipeline
/// its own tracer, so nothing is bootstrapped process-wide.
@Suite("Tracing: a span per record, a child per handler call, parents from traceparent headers")
struct TracingTests {
    static let schema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["seq"],
         "properties":{"seq":{"type":"integer"}}}
        """#

    struct Item: Decodable, Sendable { var seq: Int }

    /// The producer's trace of record `seq`: its trace id and the span id of the producer's span.
    static func producerTrace(_ seq: Int) -> (traceID: String, spanID: String) {
        func hex(_ value: Int, digits: Int) -> String {
            let text = String(value, radix: 16)
            return String(repeating: "0", count: digits - text.count) + text
        }
        return (hex(0xabc000 + seq, digits: 32), hex(0xdef000 + seq, digits: 16))
    }

    static func value(_ seq: Int) -> [UInt8] {
        Array(#"{"event_id":"e\#(seq)","event_type":"orders.item_counted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c\#(seq)","causation_id":"cause-\#(seq)","subject":"item:\#(seq)","data":{"seq":\#(seq)}}"#.utf8)
    }

    /// Records `range`, each with its producer's `traceparent` and a `tracestate`.
    static func records(_ range: Range<Int>) -> [Record] {
        range.map { seq in
            let trace = producerTrace(seq)
            return Record(
                topic: "orders", partition: 2, offset: Offset(Int64(seq)), value: value(seq),
                headers: [
                    RecordHeader(name: "traceparent", string: W3CInMemoryTracer.traceParent(traceID: trace.traceID, spanID: trace.spanID)),
                    RecordHeader(name: "tracestate", string: "vendor=producer"),
                ])
        }
    }

    static func pipeline(
        sink: any DeadLetterSink, tracer: (any Tracer)?,
        configure: (inout EventPipeline<InMemoryDedupeStore>.Configuration) -> Void = { _ in },
        handler: @escaping @Sendable (Int, HandlerContext<InMemoryDedupeStore.Transaction>) async throws -> Void
    ) throws -> EventPipeline<InMemoryDedupeStore> {
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_counted", version: 1, schemaText: schema)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_counted", as: Item.self, handler: "count") { event, context in
            try await handler(event.payload.seq, context)
        }
        var configuration = EventPipeline<InMemoryDedupeStore>.Configuration(group: "g")
        configuration.retry.initialDelay = .milliseconds(1)
        configuration.tracer = tracer
        configure(&configuration)
        return EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: router, store: InMemoryDedupeStore(),
            deadLetterSink: sink, logger: Logger(label: "tracing") { _ in SwiftLogNoOpLogHandler() },
            clock: { Date(timeIntervalSince1970: 1_800_000_000) })
    }

    /// Handler calls by sequence number.
    final class Calls: Sendable {
        let counts = Mutex<[Int: Int]>([:])
        func record(_ seq: Int) -> Int { counts.withLock { $0[seq, default: 0] += 1; return $0[seq]! } }
    }

    /// How the records reach their handlers.
    enum Path: String, CaseIterable, CustomTestStringConvertible {
        /// Grouped, a savepoint per handler: the failing call is retried alone.
        case groupedHandlerSavepoints
        /// Grouped, a savepoint per group: the records before the failing one are called again.
        case groupedGroupSavepoints
        /// One record at a time (`maxRecords` 1).
        case alone

        var testDescription: String { rawValue }

        func configure(_ configuration: inout EventPipeline<InMemoryDedupeStore>.Configuration) {
            switch self {
            case .groupedHandlerSavepoints: configuration.groupCommit.savepoints = .handler
            case .groupedGroupSavepoints: configuration.groupCommit.savepoints = .group
            case .alone: configuration.groupCommit.maxRecords = 1
            }
        }

        /// The `sluice.attempt` of each call of record 0's, 1's and 2's handler, record 1's
        /// first call failing.
        var attempts: [[Int64]] {
            switch self {
            case .groupedHandlerSavepoints, .alone: [[1], [1, 2], [1]]
            case .groupedGroupSavepoints: [[1, 1], [1, 2], [1]]
            }
        }
    }

    @Test("Each record's sluice.process span is a child of its traceparent's trace, with a sluice.handle span per handler call (a call that failed once: two)",
          arguments: Path.allCases)
    func spansFollowTheRecord(path: Path) async throws {
        let tracer = W3CInMemoryTracer()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        let pipeline = try Self.pipeline(sink: sink, tracer: tracer, configure: path.configure) { seq, _ in
            if seq == 1 && calls.record(seq) == 1 {
                throw SluiceError(code: "FLAKY", message: "first call fails", isRetriable: true)
            }
        }
        #expect(await pipeline.process(Self.records(0..<3)) == [.handled, .handled, .handled])

        let spans = tracer.finishedSpans
        let processSpans = spans.filter { $0.operationName == "sluice.process" }
        #expect(processSpans.count == 3)
        for seq in 0..<3 {
            let producer = Self.producerTrace(seq)
            let matching = processSpans.filter { $0.attributes["event.id"]?.toSpanAttribute() == .string("e\(seq)") }
            let span = try #require(matching.first)
            #expect(matching.count == 1)
            #expect(span.traceID == producer.traceID, "the record's trace continues")
            #expect(span.parentSpanID == producer.spanID, "the producer's span is its parent")
            #expect(span.kind == .consumer)
            #expect(span.attributes["kafka.topic"]?.toSpanAttribute() == .string("orders"))
            #expect(span.attributes["kafka.partition"]?.toSpanAttribute() == .int64(2))
            #expect(span.attributes["kafka.offset"]?.toSpanAttribute() == .int64(Int64(seq)))
            #expect(span.attributes["event.type"]?.toSpanAttribute() == .string("orders.item_counted"))
            #expect(span.attributes["correlation.id"]?.toSpanAttribute() == .string("c\(seq)"))
            #expect(span.attributes["causation.id"]?.toSpanAttribute() == .string("cause-\(seq)"))
            #expect(span.attributes["sluice.outcome"]?.toSpanAttribute() == .string("handled"))

            let attempts = spans.filter { $0.parentSpanID == span.spanID }
            #expect(attempts.allSatisfy { $0.operationName == "sluice.handle count" && $0.traceID == producer.traceID })
            #expect(attempts.allSatisfy { $0.attributes["sluice.handler"]?.toSpanAttribute() == .string("count") })
            #expect(attempts.compactMap { $0.attributes["sluice.attempt"]?.toSpanAttribute() } == path.attempts[seq].map { .int64($0) })
            if seq == 1 {
                #expect(attempts.map { $0.errors.count } == [1, 0], "the failed call recorded its error")
            }
        }
        #expect(spans.count == 3 + path.attempts.joined().count, "no span besides the records' and their calls'")
    }

    @Test("A dead letter keeps the record's traceparent unchanged and adds sluice.traceparent: the context of the record's span, which ends dead_lettered")
    func deadLetterCarriesTheFailingSpan() async throws {
        let tracer = W3CInMemoryTracer()
        let sink = RecordingDeadLetterSink()
        let pipeline = try Self.pipeline(sink: sink, tracer: tracer) { seq, _ in
            if seq == 1 { throw SluiceError(code: "REJECTED_BY_HANDLER", message: "never", isRetriable: false) }
        }
        var records = Self.records(0..<3)
        records[2].value = Array("not json".utf8)  // rejected by the decoder, no handler called
        let outcomes = await pipeline.process(records)
        #expect(outcomes == [.handled, .deadLettered("REJECTED_BY_HANDLER"), .deadLettered(.envelopeNotJSON)])

        let processSpans = tracer.finishedSpans.filter { $0.operationName == "sluice.process" }
        #expect(sink.records.count == 2)
        for (letter, seq) in zip(sink.records, [1, 2]) {
            let span = try #require(processSpans.first { $0.attributes["kafka.offset"]?.toSpanAttribute() == .int64(Int64(seq)) })
            #expect(span.attributes["sluice.outcome"]?.toSpanAttribute() == .string("dead_lettered"))
            #expect(span.status?.code == .error)
            #expect(span.attributes["sluice.error.code"]?.toSpanAttribute() == .string(letter.errorCode?.rawValue ?? "-"))
            let producer = Self.producerTrace(seq)
            #expect(letter.headers.filter { $0.name == "traceparent" }
                == [RecordHeader(name: "traceparent", string: W3CInMemoryTracer.traceParent(traceID: producer.traceID, spanID: producer.spanID))])
            #expect(letter.header("tracestate") == "vendor=producer")
            #expect(letter.header(DeadLetterHeader.traceParent) == W3CInMemoryTracer.traceParent(traceID: span.traceID, spanID: span.spanID))
            #expect(span.traceID == producer.traceID)
        }
        let handled = try #require(processSpans.first { $0.attributes["kafka.offset"]?.toSpanAttribute() == .int64(0) })
        #expect(handled.status == nil, "a handled record's span is not an error")
    }

    @Test("The handler's context carries its call's span, also bound as ServiceContext.current: its own spans join the record's trace")
    func handlerSeesItsSpan() async throws {
        let tracer = W3CInMemoryTracer()
        let seen = Mutex<[(InMemorySpanContext?, InMemorySpanContext?)]>([])
        let pipeline = try Self.pipeline(sink: RecordingDeadLetterSink(), tracer: tracer) { _, context in
            seen.withLock { $0.append((context.serviceContext.inMemorySpanContext, ServiceContext.current?.inMemorySpanContext)) }
            // What an instrumented client does: a span in the current context.
            tracer.startSpan("client call").end()
        }
        #expect(await pipeline.process(Self.records(0..<2)) == [.handled, .handled])

        let spans = tracer.finishedSpans
        let attempts = spans.filter { $0.operationName == "sluice.handle count" }
        #expect(seen.withLock { $0.map { $0.0 } } == attempts.map(\.spanContext))
        #expect(seen.withLock { $0.map { $0.1 } } == attempts.map(\.spanContext))
        let clientCalls = spans.filter { $0.operationName == "client call" }
        #expect(clientCalls.map(\.parentSpanID) == attempts.map(\.spanID))
        #expect(clientCalls.map(\.traceID) == [Self.producerTrace(0).traceID, Self.producerTrace(1).traceID])
    }

    @Test("A record without traceparent starts a trace of its own")
    func recordWithoutTraceParent() async throws {
        let tracer = W3CInMemoryTracer()
        let pipeline = try Self.pipeline(sink: RecordingDeadLetterSink(), tracer: tracer) { _, _ in }
        let record = Record(topic: "orders", partition: 0, offset: Offset(7), value: Self.value(7))
        #expect(await pipeline.process(record) == .handled)
        let span = try #require(tracer.finishedSpans.first { $0.operationName == "sluice.process" })
        #expect(span.parentSpanID == nil)
        #expect(tracer.finishedSpans.filter { $0.parentSpanID == span.spanID }.count == 1)
    }

    @Test("By default the pipeline takes the process's tracer (here scoped to the task with withTracer)")
    func defaultTracerIsTheBootstrappedOne() async throws {
        let tracer = W3CInMemoryTracer()
        let pipeline = try withTracer(tracer) {
            try Self.pipeline(sink: RecordingDeadLetterSink(), tracer: nil) { _, _ in }
        }
        #expect(await pipeline.process(Self.records(0..<2)) == [.handled, .handled])
        #expect(tracer.finishedSpans.filter { $0.operationName == "sluice.process" }.map(\.traceID)
            == [Self.producerTrace(0).traceID, Self.producerTrace(1).traceID])
    }

    @Test("No tracer: no span, no sluice.traceparent, an empty context for the handler, and the same outcomes and dead letters as with one",
          arguments: [false, true])
    func noTracerChangesNothing(explicitNoOp: Bool) async throws {
        let records = Self.records(0..<4)
        func run(tracer: (any Tracer)?) async throws -> (outcomes: [RecordOutcome], letters: [DeadLetterRecord], contexts: [Int]) {
            let sink = RecordingDeadLetterSink()
            let calls = Calls()
            let contexts = Mutex<[Int]>([])
            let pipeline = try Self.pipeline(sink: sink, tracer: tracer) { seq, context in
                contexts.withLock { $0.append(context.serviceContext.count) }
                if seq == 1 && calls.record(seq) == 1 { throw SluiceError(code: "FLAKY", message: "once", isRetriable: true) }
                if seq == 2 { throw SluiceError(code: "REJECTED_BY_HANDLER", message: "never", isRetriable: false) }
            }
            return (await pipeline.process(records), sink.records, contexts.withLock { $0 })
        }
        let untraced = try await run(tracer: explicitNoOp ? NoOpTracer() : nil)
        let traced = try await run(tracer: W3CInMemoryTracer())

        #expect(untraced.outcomes == [.handled, .handled, .deadLettered("REJECTED_BY_HANDLER"), .handled])
        #expect(untraced.outcomes == traced.outcomes)
        #expect(untraced.contexts == [0, 0, 0, 0, 0], "the handler's context is the empty top-level one")
        #expect(traced.contexts.allSatisfy { $0 > 0 })
        let letter = try #require(untraced.letters.first)
        #expect(letter.header(DeadLetterHeader.traceParent) == nil)
        var tracedLetters = traced.letters
        for index in tracedLetters.indices {
            #expect(tracedLetters[index].header(DeadLetterHeader.traceParent) != nil)
            tracedLetters[index].headers.removeAll { $0.name == DeadLetterHeader.traceParent }
        }
        #expect(untraced.letters == tracedLetters, "the same letters but for sluice.traceparent")
    }
}
