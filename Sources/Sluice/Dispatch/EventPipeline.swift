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
        /// How records of one lane share store transactions. Default: `GroupCommit/init()`.
        public var groupCommit = GroupCommit()

        /// The defaults for consumer group `group` (the dedupe records and stored offsets are kept under it).
        public init(group: String) {
            self.group = group
        }
    }

    /// Bounds on a group of records committed in one store transaction (see ``process(_:reporting:)``).
    ///
    /// Larger groups mean fewer commits (an fsync each on SQLite) and more work redone when a
    /// group's commit fails; the time bound keeps a slow group from holding the store's writer.
    public struct GroupCommit: Sendable, Hashable {
        /// Records per transaction at most; 1 turns grouping off. Default: 100.
        public var maxRecords: Int
        /// How long a group may keep adding records. Default: 100 ms.
        public var maxDuration: Duration

        /// Groups of at most `maxRecords` records that keep adding records for at most `maxDuration`.
        public init(maxRecords: Int = 100, maxDuration: Duration = .milliseconds(100)) {
            self.maxRecords = maxRecords
            self.maxDuration = maxDuration
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

    /// A pipeline that decodes records with `decoder`, upcasts and routes them with `upcasters`
    /// and `router`, runs their handlers in `store` transactions and dead-letters to
    /// `deadLetterSink`; `clock` and `random` (retry jitter) are for tests.
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
        let prepared = prepare(record)
        switch prepared.step {
        case .finished(let outcome): return outcome
        case .reject(let reason): return await deadLetter(record, reason, logger: prepared.logger)
        case .route(let envelope, let routes):
            return await handle(record, envelope: envelope, routes: routes, from: 0, logger: prepared.logger)
        }
    }

    /// Told each record's outcome (by its index in the batch) as soon as it is durable, in order.
    public typealias OutcomeReport = @Sendable (_ index: Int, _ outcome: RecordOutcome) -> Void

    /// Gives each of `records` (consecutive records of one lane, in offset order) its outcome,
    /// committing runs of them together as ``Configuration/groupCommit`` allows.
    ///
    /// Records whose envelope decodes and whose handlers succeed share one store transaction, a
    /// savepoint per handler; the transaction commits after ``GroupCommit/maxRecords`` records,
    /// after ``GroupCommit/maxDuration``, at the end of `records`, or before a record that needs
    /// anything else (a dead letter, a retry). A handler that throws rolls back only its own
    /// savepoint: the records before it commit, and it is retried alone with backoff.
    ///
    /// - Returns: One outcome per record, in order. After the first ``RecordOutcome/abandoned``
    ///   every later record is abandoned too.
    public func process(_ records: [Record], reporting report: OutcomeReport? = nil) async -> [RecordOutcome] {
        var outcomes: [RecordOutcome] = []
        outcomes.reserveCapacity(records.count)
        // Outcomes are reported as they become durable, so the caller can move the partition's
        // watermark before the whole batch is done (a halted dead-letter write, a long retry).
        func emit(_ outcome: RecordOutcome) {
            report?(outcomes.count, outcome)
            outcomes.append(outcome)
        }
        guard configuration.groupCommit.maxRecords > 1, !configuration.dryRun, records.count > 1 else {
            for record in records {
                emit(outcomes.last == .abandoned ? .abandoned : await process(record))
            }
            return outcomes
        }
        let prepared = records.map(prepare)
        var index = 0
        while index < records.count {
            if outcomes.last == .abandoned || Task.isCancelled {
                for _ in index..<records.count { emit(.abandoned) }
                break
            }
            switch prepared[index].step {
            case .finished(let outcome):
                emit(outcome)
                index += 1
            case .reject(let reason):
                emit(await deadLetter(records[index], reason, logger: prepared[index].logger))
                index += 1
            case .route:
                let batch = await commitGroup(records, prepared: prepared, from: index)
                for outcome in batch.outcomes { emit(outcome) }
                index += batch.outcomes.count
                guard let stop = batch.stop else { continue }
                let record = records[index]
                let logger = prepared[index].logger
                guard case .route(let envelope, let routes) = prepared[index].step else { continue }
                switch stop {
                case .failed(let route, let error, let started):
                    emit(await handle(
                        record, envelope: envelope, routes: routes, from: route, logger: logger,
                        pending: PendingFailure(error: error, started: started), handledBefore: batch.partlyHandled))
                case .mismatch(let route, let stored):
                    emit(await deadLetter(record, mismatch(envelope, route: routes[route], stored: stored, attempts: 1), logger: logger))
                case .commitFailed(let attempted):
                    // Nothing of the group committed (a deadlock with another lane, a conflict, an
                    // outage): its records go the one-at-a-time path, whose retries wait for the
                    // store and whose small transactions rarely collide again; then group again.
                    emit(await handle(record, envelope: envelope, routes: routes, from: 0, logger: logger))
                    var alone = 1
                    while alone < attempted, index + alone < records.count, outcomes.last != .abandoned,
                        case .route(let envelope, let routes) = prepared[index + alone].step
                    {
                        emit(await handle(
                            records[index + alone], envelope: envelope, routes: routes, from: 0, logger: prepared[index + alone].logger))
                        alone += 1
                    }
                    index += alone - 1
                }
                index += 1
            }
        }
        return outcomes
    }

    // MARK: - Decoding and routing

    private struct Prepared {
        enum Step {
            /// An outcome reached without a handler (skipped by policy, no handler, dry run).
            case finished(RecordOutcome)
            /// Rejected by the decoder: to the dead-letter topic.
            case reject(DeadLetterReason)
            /// To these handlers, in order.
            case route(Envelope, [EventRouter<Store.Transaction>.Route])
        }

        var step: Step
        var logger: Logger
    }

    private func prepare(_ record: Record) -> Prepared {
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
                return Prepared(step: .finished(.skipped(error.code)), logger: logger)
            }
            let ids = Self.identifiers(in: record.value)
            logger.warning("record rejected", metadata: [
                "error.code": "\(error.code)", "error.path": "\(error.path ?? "")", "error": "\(error.message)",
            ])
            return Prepared(step: .reject(DeadLetterReason(
                code: error.code, message: error.message, isRetriable: false, attempts: 1,
                eventID: ids.eventID, correlationID: ids.correlationID)), logger: logger)
        }
        logger[metadataKey: "event.id"] = "\(envelope.eventID)"
        logger[metadataKey: "event.type"] = "\(envelope.eventType)"
        logger[metadataKey: "correlation.id"] = "\(envelope.correlationID)"
        logger[metadataKey: "causation.id"] = "\(envelope.causationID)"

        let routes = router.routes(for: envelope.eventType)
        guard !routes.isEmpty else {
            // A known type this service does not handle: nothing to do, and nothing lost.
            metrics.skipped(record, code: .noHandler)
            return Prepared(step: .finished(.skipped(.noHandler)), logger: logger)
        }
        if configuration.dryRun {
            metrics.handled(record)
            return Prepared(step: .finished(.handled), logger: logger)
        }
        return Prepared(step: .route(envelope, routes), logger: logger)
    }

    // MARK: - Group commit

    private struct GroupResult {
        enum Stop {
            /// The handler at this route index threw on its first attempt.
            case failed(route: Int, error: any Error, started: ContinuousClock.Instant)
            /// The handler at this route index met a record of the event with another payload.
            case mismatch(route: Int, stored: String)
            /// The transaction itself failed (begin or commit): nothing of the group's `attempted`
            /// records committed.
            case commitFailed(attempted: Int)
        }

        /// Outcomes of the records that committed, from the group's first record on.
        var outcomes: [RecordOutcome]
        /// Why the group ended before the record after `outcomes`, when it did not end cleanly.
        var stop: Stop?
        /// Whether a handler of the stopping record ran and committed before the one that stopped it.
        var partlyHandled = false
    }

    private enum SavepointResult: Sendable {
        case handled, duplicate
        case mismatch(stored: String)
    }

    /// Mutable state a group's transaction body fills in; it lives only for one non-escaping body.
    private final class GroupProgress {
        var outcomes: [RecordOutcome] = []
        var stop: GroupResult.Stop?
        var partlyHandled = false
        var durations: [(String, Duration)] = []
    }

    /// Runs consecutive routable records from `start` in one transaction, until the group is
    /// full, a record is not routable, or a handler fails.
    private func commitGroup(_ records: [Record], prepared: [Prepared], from start: Int) async -> GroupResult {
        let group = configuration.group
        let dedupe = configuration.dedupe
        let isReplay = configuration.isReplay
        let storesOffsets = configuration.storesOffsets
        let limits = configuration.groupCommit
        let progress = GroupProgress()
        let began = ContinuousClock.now
        do {
            try await store.withTransaction { transaction in
                var positions: [TopicPartition: Offset] = [:]
                var index = start
                while index < records.count, progress.outcomes.count < limits.maxRecords,
                    progress.outcomes.isEmpty || ContinuousClock.now - began < limits.maxDuration
                {
                    guard case .route(let envelope, let routes) = prepared[index].step else { break }
                    let record = records[index]
                    let payloadHash = PayloadHash.of(record.value ?? [])
                    var sawHandled = false
                    for (routeIndex, route) in routes.enumerated() {
                        let started = ContinuousClock.now
                        var handlerLogger = prepared[index].logger
                        handlerLogger[metadataKey: "sluice.handler"] = "\(route.name)"
                        let result: SavepointResult
                        do {
                            result = try await transaction.withSavepoint {
                                let existing = try await transaction.processedEvent(group: group, handler: route.name, eventID: envelope.eventID)
                                if let existing {
                                    if existing.payloadHash != payloadHash { return .mismatch(stored: existing.payloadHash) }
                                    if dedupe == .respect { return .duplicate }
                                }
                                let context = HandlerContext(
                                    envelope: envelope, record: record, logger: handlerLogger, isReplay: isReplay,
                                    attempt: 1, handlerName: route.name, transaction: transaction)
                                try await route.invoke(envelope, self.upcasters, context)
                                let count = try await transaction.markProcessed(
                                    group: group, handler: route.name, eventID: envelope.eventID, payloadHash: payloadHash, at: self.clock())
                                if existing == nil && count != 1 { throw Self.concurrentlyProcessed(envelope.eventID) }
                                return .handled
                            }
                        } catch {
                            handlerLogger.warning("handler failed; retrying alone", metadata: ["error": "\(error)", "attempt": "1"])
                            progress.stop = .failed(route: routeIndex, error: error, started: started)
                            break
                        }
                        switch result {
                        case .handled:
                            sawHandled = true
                            progress.durations.append((route.name, ContinuousClock.now - started))
                        case .duplicate:
                            continue
                        case .mismatch(let stored):
                            progress.stop = .mismatch(route: routeIndex, stored: stored)
                        }
                        if progress.stop != nil { break }
                    }
                    if progress.stop != nil {
                        progress.partlyHandled = sawHandled
                        break
                    }
                    positions[record.topicPartition] = record.offset.next
                    progress.outcomes.append(sawHandled ? .handled : .duplicate)
                    index += 1
                }
                if storesOffsets {
                    for (partition, offset) in positions {
                        try await transaction.storeNextOffset(offset, for: partition, group: group)
                    }
                }
            }
        } catch {
            logger.warning("group transaction failed; continuing one record at a time", metadata: [
                "error": "\(error)", "records": "\(progress.outcomes.count)",
            ])
            return GroupResult(outcomes: [], stop: .commitFailed(attempted: max(1, progress.outcomes.count + (progress.stop == nil ? 0 : 1))))
        }
        for (offset, outcome) in progress.outcomes.enumerated() {
            let record = records[start + offset]
            if outcome == .handled { metrics.handled(record) } else { metrics.duplicate(record) }
        }
        for (handler, duration) in progress.durations { metrics.handlerDuration(handler, duration) }
        return GroupResult(outcomes: progress.outcomes, stop: progress.stop, partlyHandled: progress.partlyHandled)
    }

    // MARK: - One record at a time

    /// A first attempt that already failed (inside a group), to continue from.
    private struct PendingFailure {
        var error: any Error
        var started: ContinuousClock.Instant
    }

    /// Runs `routes[first...]` for one record, each handler in its own transaction with retries.
    private func handle(
        _ record: Record, envelope: Envelope, routes: [EventRouter<Store.Transaction>.Route], from first: Int,
        logger: Logger, pending: PendingFailure? = nil, handledBefore: Bool = false
    ) async -> RecordOutcome {
        let payloadHash = PayloadHash.of(record.value ?? [])
        var sawHandled = handledBefore
        var pending = pending
        for index in first..<routes.count {
            let route = routes[index]
            let storesOffset = index == routes.count - 1 && configuration.storesOffsets
            let result = await run(
                route, envelope: envelope, record: record, payloadHash: payloadHash, storesOffset: storesOffset,
                logger: logger, pending: pending)
            pending = nil
            switch result {
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

    private func mismatch(
        _ envelope: Envelope, route: EventRouter<Store.Transaction>.Route, stored: String, attempts: Int
    ) -> DeadLetterReason {
        let payloadHash = "\(stored.prefix(12))…"
        return DeadLetterReason(
            code: .eventIDPayloadMismatch,
            message: "event \(envelope.eventID) was processed before with a different payload (stored hash \(payloadHash))",
            isRetriable: false, attempts: attempts, handler: route.name,
            eventID: envelope.eventID, correlationID: envelope.correlationID)
    }

    /// Runs one handler in its own transaction, retrying as the policy allows.
    ///
    /// - Parameter pending: A first attempt that already failed elsewhere (in a group): the
    ///   retry policy starts from it, so the handler is not called again before its backoff,
    ///   and a non-retriable error is not retried at all.
    private func run(
        _ route: EventRouter<Store.Transaction>.Route, envelope: Envelope, record: Record, payloadHash: String,
        storesOffset: Bool, logger: Logger, pending: PendingFailure? = nil
    ) async -> HandlerResult {
        let group = configuration.group
        let dedupe = configuration.dedupe
        let isReplay = configuration.isReplay
        let started = pending?.started ?? ContinuousClock.now
        var attempt = 1
        var failure = pending?.error
        var handlerLogger = logger
        handlerLogger[metadataKey: "sluice.handler"] = "\(route.name)"
        while true {
            if let error = failure {
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
                failure = nil
            }
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
                    return .failed(mismatch(envelope, route: route, stored: stored, attempts: attempt))
                }
            } catch {
                failure = error
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
