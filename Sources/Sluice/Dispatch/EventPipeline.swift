import CoreMetrics
import Foundation
import Logging

/// Gives each record its durable outcome: decode and validate the envelope, run every handler of
/// its type inside a store transaction (skipping events already processed), retry failures with
/// backoff, and dead-letter what cannot be handled.
///
/// Its ``process(_:)`` is the processor a ``PartitionDispatcher`` calls, one record of a
/// partition at a time.
public final class EventPipeline<Store: DedupeStore>: Sendable {
    /// What to do with records whose event type no schema describes.
    public enum UnknownEventTypePolicy: Sendable, Hashable {
        /// Dead-letter them as `EVENT_TYPE_UNKNOWN` (the default).
        case deadLetter
        /// Skip them, counting them in `sluice.records.skipped`.
        case skip
    }

    /// Whether already-processed events run again.
    public enum DedupeMode: String, Sendable, Hashable {
        /// Skip events already processed (live consumption; replays that fill gaps).
        case respect
        /// Run handlers again and update the processed records (replays that rebuild state).
        case reprocess
    }

    /// How the pipeline behaves.
    public struct Configuration: Sendable {
        /// The consumer group: part of the dedupe key and of the dead-letter provenance.
        public var group: String
        /// Handler retries. Default: ``RetryPolicy/init()``.
        public var retry = RetryPolicy()
        /// Where poison records go. Default: `<topic>.DLT`.
        public var deadLetters = DeadLetterPolicy()
        /// Default: ``UnknownEventTypePolicy/deadLetter``.
        public var unknownEventTypes = UnknownEventTypePolicy.deadLetter
        /// Default: ``DedupeMode/respect``.
        public var dedupe = DedupeMode.respect
        /// Whether handlers are told this is a replay. Default: `false`.
        public var isReplay = false
        /// Decode, validate and route, but call no handler and write no dead letter. Default: `false`.
        public var dryRun = false
        /// Whether each record's transaction stores its partition's next offset for ``group``.
        /// Replays turn it off: they must not move the live group's position. Default: `true`.
        public var storesOffsets = true

        public init(group: String) {
            self.group = group
        }
    }

    private let configuration: Configuration
    private let decoder: EnvelopeDecoder
    private let upcasters: UpcasterChain
    private let router: EventRouter<Store.Transaction>
    private let store: Store
    private let deadLetterSink: any DeadLetterSink
    private let logger: Logger
    private let metrics: PipelineMetrics
    private let clock: @Sendable () -> Date
    private let random: @Sendable () -> Double

    public init(
        configuration: Configuration,
        decoder: EnvelopeDecoder,
        upcasters: UpcasterChain,
        router: EventRouter<Store.Transaction>,
        store: Store,
        deadLetterSink: any DeadLetterSink,
        logger: Logger,
        metricsFactory: any MetricsFactory = MetricsSystem.factory,
        clock: @escaping @Sendable () -> Date = { Date() },
        random: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) }
    ) {
        self.configuration = configuration
        self.decoder = decoder
        self.upcasters = upcasters
        self.router = router
        self.store = store
        self.deadLetterSink = deadLetterSink
        self.logger = logger
        self.metrics = PipelineMetrics(factory: metricsFactory)
        self.clock = clock
        self.random = random
    }

    /// Gives `record` its outcome. Returns ``RecordOutcome/abandoned`` only when cancelled
    /// (revocation or shutdown) before an outcome was reached.
    public func process(_ record: Record) async -> RecordOutcome {
        metrics.consumed(record)
        var logger = self.logger
        logger[metadataKey: "kafka.topic"] = "\(record.topic)"
        logger[metadataKey: "kafka.partition"] = "\(record.partition)"
        logger[metadataKey: "kafka.offset"] = "\(record.offset.rawValue)"

        let envelope: Envelope
        switch decoder.result(decoding: record.value) {
        case .success(let decoded):
            envelope = decoded
        case .failure(let error):
            if error.code == .eventTypeUnknown && configuration.unknownEventTypes == .skip {
                logger.debug("skipping a record of an unknown event type", metadata: ["error": "\(error)"])
                metrics.skipped(record, code: error.code)
                return .skipped(error.code)
            }
            let ids = Self.identifiers(in: record.value)
            logger.warning("record rejected", metadata: [
                "error.code": "\(error.code)", "error.path": "\(error.path ?? "")", "error": "\(error.message)",
            ])
            return await deadLetter(record, DeadLetterReason(
                code: error.code, message: error.message, isRetriable: false, attempts: 1,
                eventID: ids.eventID, correlationID: ids.correlationID), logger: logger)
        }
        logger[metadataKey: "event.id"] = "\(envelope.eventID)"
        logger[metadataKey: "event.type"] = "\(envelope.eventType)"
        logger[metadataKey: "correlation.id"] = "\(envelope.correlationID)"
        logger[metadataKey: "causation.id"] = "\(envelope.causationID)"

        let routes = router.routes(for: envelope.eventType)
        guard !routes.isEmpty else {
            // A known type this service does not handle: nothing to do, and nothing lost.
            metrics.skipped(record, code: .noHandler)
            return .skipped(.noHandler)
        }
        if configuration.dryRun {
            metrics.handled(record)
            return .handled
        }
        let payloadHash = PayloadHash.of(record.value ?? [])
        var sawHandled = false
        for (index, route) in routes.enumerated() {
            let isLast = index == routes.count - 1 && configuration.storesOffsets
            switch await run(route, envelope: envelope, record: record, payloadHash: payloadHash, storesOffset: isLast, logger: logger) {
            case .handled: sawHandled = true
            case .duplicate: continue
            case .failed(let reason): return await deadLetter(record, reason, logger: logger)
            case .abandoned: return .abandoned
            }
        }
        if sawHandled {
            metrics.handled(record)
            return .handled
        }
        metrics.duplicate(record)
        return .duplicate
    }

    private enum HandlerResult {
        case handled, duplicate, abandoned
        case failed(DeadLetterReason)
    }

    private enum TransactionResult: Sendable {
        case handled, duplicate
        case mismatch(stored: String)
    }

    /// Runs one handler in its own transaction, retrying as the policy allows.
    private func run(
        _ route: EventRouter<Store.Transaction>.Route, envelope: Envelope, record: Record, payloadHash: String,
        storesOffset: Bool, logger: Logger
    ) async -> HandlerResult {
        let group = configuration.group
        let dedupe = configuration.dedupe
        let isReplay = configuration.isReplay
        let started = ContinuousClock.now
        var attempt = 1
        var handlerLogger = logger
        handlerLogger[metadataKey: "sluice.handler"] = "\(route.name)"
        while true {
            let context = (attempt: attempt, logger: handlerLogger)
            do {
                let result = try await store.withTransaction { transaction -> TransactionResult in
                    let existing = try await transaction.processedEvent(group: group, handler: route.name, eventID: envelope.eventID)
                    if let existing {
                        if existing.payloadHash != payloadHash { return .mismatch(stored: existing.payloadHash) }
                        if dedupe == .respect {
                            if storesOffset { try await transaction.storeNextOffset(record.offset.next, for: record.topicPartition, group: group) }
                            return .duplicate
                        }
                    }
                    let handlerContext = HandlerContext(
                        envelope: envelope, record: record, logger: context.logger, isReplay: isReplay,
                        attempt: context.attempt, handlerName: route.name, transaction: transaction)
                    try await route.invoke(envelope, self.upcasters, handlerContext)
                    let count = try await transaction.markProcessed(
                        group: group, handler: route.name, eventID: envelope.eventID, payloadHash: payloadHash, at: self.clock())
                    if existing == nil && count != 1 { throw Self.concurrentlyProcessed(envelope.eventID) }
                    if storesOffset { try await transaction.storeNextOffset(record.offset.next, for: record.topicPartition, group: group) }
                    return .handled
                }
                switch result {
                case .handled:
                    metrics.handlerDuration(route.name, ContinuousClock.now - started)
                    return .handled
                case .duplicate:
                    return .duplicate
                case .mismatch(let stored):
                    return .failed(DeadLetterReason(
                        code: .eventIDPayloadMismatch,
                        message: "event \(envelope.eventID) was processed before with a different payload (hash \(stored.prefix(12))…, now \(payloadHash.prefix(12))…)",
                        isRetriable: false, attempts: attempt, handler: route.name,
                        eventID: envelope.eventID, correlationID: envelope.correlationID))
                }
            } catch {
                let sluiceError = error as? SluiceError
                let retriable = sluiceError?.isRetriable ?? true
                let code = sluiceError?.code ?? .handlerFailed
                let message = sluiceError?.message ?? String(describing: error)
                let delay = retriable
                    ? configuration.retry.delay(afterAttempt: attempt, elapsed: ContinuousClock.now - started, random: random())
                    : nil
                guard let delay else {
                    handlerLogger.error("handler failed for good", metadata: [
                        "error.code": "\(code)", "error": "\(message)", "attempts": "\(attempt)",
                    ])
                    return .failed(DeadLetterReason(
                        code: retriable ? .handlerRetriesExhausted : code,
                        message: retriable ? "\(attempt) attempt(s) failed; last error \(code): \(message)" : message,
                        isRetriable: retriable, attempts: attempt, handler: route.name,
                        eventID: envelope.eventID, correlationID: envelope.correlationID))
                }
                handlerLogger.warning("handler failed; retrying", metadata: [
                    "error.code": "\(code)", "error": "\(message)", "attempt": "\(attempt)", "retry.in": "\(delay)",
                ])
                metrics.retried(record, handler: route.name)
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    return .abandoned
                }
                attempt += 1
            }
        }
    }

    /// Writes the dead letter, holding the partition until the broker acknowledged it.
    private func deadLetter(_ record: Record, _ reason: DeadLetterReason, logger: Logger) async -> RecordOutcome {
        if configuration.dryRun {
            metrics.deadLettered(record, code: reason.code)
            return .deadLettered(reason.code)
        }
        let letter = DeadLetterRecord(
            original: record, topic: configuration.deadLetters.topic(for: record.topic),
            group: configuration.group, reason: reason, failedAt: clock())
        var delay = Duration.milliseconds(100)
        var halted = false
        while true {
            do {
                try await deadLetterSink.send(letter)
                if halted {
                    logger.notice("dead-letter topic writable again; partition continues", metadata: ["dead_letter.topic": "\(letter.topic)"])
                    metrics.halted(record.topicPartition, false)
                }
                metrics.deadLettered(record, code: reason.code)
                return .deadLettered(reason.code)
            } catch {
                // Nothing past the poison record may be committed until its dead letter is safe.
                logger.critical("cannot write to the dead-letter topic; partition halted", metadata: [
                    "dead_letter.topic": "\(letter.topic)", "error": "\(error)", "retry.in": "\(delay)",
                ])
                if !halted { metrics.halted(record.topicPartition, true) }
                halted = true
                do {
                    try await Task.sleep(for: delay)
                } catch {
                    metrics.halted(record.topicPartition, false)
                    return .abandoned
                }
                delay = min(delay * 2, configuration.deadLetters.maxRetryDelay)
            }
        }
    }

    /// The error of a transaction that found no record of an event and then saw its insert meet
    /// one: another consumer processed the event meanwhile. Retriable: the retry rolls back this
    /// handler's writes and finds the event processed.
    static func concurrentlyProcessed(_ eventID: String) -> SluiceError {
        SluiceError(code: .storeConflict, message: "event \(eventID) was recorded by a concurrent transaction", isRetriable: true)
    }

    /// `event_id` and `correlation_id` of a value that failed validation, when it is JSON that has them.
    private static func identifiers(in value: [UInt8]?) -> (eventID: String?, correlationID: String?) {
        // Best effort for the provenance headers: the record is already rejected with its own
        // error, so a value that does not even parse simply has no ids to report.
        guard let value, let document = try? JSONParser.parse(value), case .object(let object) = document else { return (nil, nil) }
        func string(_ key: String) -> String? {
            if case .string(let text) = object[key], !text.isEmpty, text.utf8.count <= 128 { return text }
            return nil
        }
        return (string("event_id"), string("correlation_id"))
    }
}

extension SluiceError.Code {
    /// A handler threw an error that is not a ``SluiceError``, and retrying was not possible.
    public static let handlerFailed: Self = "HANDLER_FAILED"
    /// A handler kept failing with retriable errors until the retry policy gave up.
    public static let handlerRetriesExhausted: Self = "HANDLER_RETRIES_EXHAUSTED"
    /// A known event type no handler of this service is registered for (skipped).
    public static let noHandler: Self = "NO_HANDLER"
}
