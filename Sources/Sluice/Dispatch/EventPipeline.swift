import CoreMetrics
import Foundation
import Logging
import Synchronization
import Tracing

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
        /// Whether poison parks its key, and whether records of parked keys are appended or
        /// skipped. Default: ``Parking/off`` (dead-letter and move on; no parked key looked up).
        public var parking = Parking.off
        /// The tracer of the pipeline's spans (`sluice.process` per record, `sluice.handle
        /// <handler>` per handler call), which also reads the records' `traceparent` headers and
        /// writes the dead letters' `sluice.traceparent`. Default: `nil`, the tracer the process
        /// bootstrapped (`InstrumentationSystem.tracer`, read when the pipeline is made) with the
        /// bootstrapped instrument for the headers; with none, or a `NoOpTracer`, nothing is traced.
        public var tracer: (any Tracer)?

        /// The defaults for consumer group `group` (the dedupe records and stored offsets are kept under it).
        public init(group: String) {
            self.group = group
        }
    }

    /// Bounds on the records committed in one store transaction (see ``process(_:reporting:)``).
    ///
    /// A lane hands the pipeline a group of consecutive records of its partition; the ready groups
    /// of every lane share one store transaction (store-wide group commit), which commits once.
    /// Larger transactions mean fewer commits (an fsync each on SQLite) and more work redone when
    /// a commit fails; the time bound keeps a slow transaction from holding the store's writer.
    public struct GroupCommit: Sendable, Hashable {
        /// Records of one lane's group at most; 1 turns grouping off. Default: 100.
        public var maxRecords: Int
        /// How long a transaction may keep adding records, from its first. Default: 100 ms.
        public var maxDuration: Duration
        /// Records of all lanes' groups in one transaction at most (a group is never split).
        /// Default: 1,000.
        public var maxTransactionRecords: Int
        /// What one savepoint covers inside a group. Default: ``SavepointScope/handler``.
        public var savepoints: SavepointScope

        /// What a savepoint covers inside a group: what a handler that throws rolls back.
        public enum SavepointScope: Sendable, Hashable {
            /// A savepoint around each handler (the default): a handler that throws rolls back
            /// its own writes only, and no other handler is called again. Two statements per
            /// handler (on PostgreSQL, two round trips).
            case handler
            /// One savepoint around each lane's group: two statements per group, not per
            /// handler (on PostgreSQL, about three times the events per second for a handler of
            /// one statement). A handler that throws rolls the group's savepoint back, its own
            /// writes with it, and the group's records before it run again inside a new one, so
            /// what commits is the same; but their handlers are **called again**. Choose it only
            /// when handlers do nothing outside the transaction (no HTTP call, no email) and do not
            /// count their calls.
            case group
        }

        /// Groups of at most `maxRecords` records, sharing transactions of at most
        /// `maxTransactionRecords` records that keep adding records for at most `maxDuration`,
        /// with savepoints of `savepoints`.
        public init(
            maxRecords: Int = 100, maxDuration: Duration = .milliseconds(100), maxTransactionRecords: Int = 1_000,
            savepoints: SavepointScope = .handler
        ) {
            self.maxRecords = maxRecords
            self.maxDuration = maxDuration
            self.maxTransactionRecords = maxTransactionRecords
            self.savepoints = savepoints
        }
    }

    private let configuration: Configuration
    /// Whether the pipeline only routes (``Configuration/dryRun``): a replay's summary says so.
    var isDryRun: Bool { configuration.dryRun }
    private let decoder: EnvelopeDecoder
    private let upcasters: UpcasterChain
    private let router: EventRouter<Store.Transaction>
    private let store: Store
    private let deadLetterSink: any DeadLetterSink
    private let logger: Logger
    private let metrics: PipelineMetrics
    private let clock: @Sendable () -> Date
    private let random: @Sendable () -> Double
    private let committer: GroupCommitQueue<Store.Transaction, GroupResult>
    private let tracing: PipelineTracing?
    /// Records of parked keys skipped (``Parking/Mode/skip``), per topic and key.
    private let skippedParked = Mutex<[String: [ParkingKey: Int]]>([:])

    /// The parked keys whose records this pipeline skipped (a replay respecting parking), per
    /// topic, with how many records of each.
    public var parkedKeysSkipped: [String: [ParkingKey: Int]] { skippedParked.withLock { $0 } }

    /// Which of `keys` are parked. A replay (``Parking/Mode/skip``, its default) on a store that
    /// does not implement parking has nothing parked to respect; live parking needs the store.
    private func lookUpParked(_ keys: [ParkingKey], topic: String, in transaction: Store.Transaction) async throws -> Set<ParkingKey> {
        do {
            return try await transaction.parkedKeys(group: configuration.group, topic: topic, among: keys)
        } catch let error as SluiceError where error.code == .parkingUnsupported && configuration.parking.mode(for: topic) == .skip {
            return []
        }
    }

    private func noteSkippedParked(topic: String, key: ParkingKey) {
        skippedParked.withLock { $0[topic, default: [:]][key, default: 0] += 1 }
    }

    /// The partitions halted right now, waiting for their dead-letter topic or the store (what
    /// `sluice.partition.halted` counts), with why and since when: for readiness checks.
    public var halts: PartitionHalts { metrics.halts }

    /// The halt reason of a partition whose dead letter cannot be written (an outage).
    static var deadLetterHaltReason: String { "cannot write to the dead-letter topic" }
    /// The halt reason of a partition waiting for its store.
    static var storeHaltReason: String { "store unavailable" }

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
        self.committer = GroupCommitQueue(store: store, maxTransactionRecords: configuration.groupCommit.maxTransactionRecords)
        self.tracing = PipelineTracing(tracer: configuration.tracer)
    }

    /// Gives `record` its outcome. Returns ``RecordOutcome/abandoned`` only when cancelled
    /// (revocation or shutdown) before an outcome was reached.
    public func process(_ record: Record) async -> RecordOutcome {
        let prepared = prepare(record)
        let outcome: RecordOutcome
        switch prepared.step {
        case .finished(let finished): outcome = finished
        case .reject(let reason): outcome = await deadLetter(record, reason, log: prepared.log)
        case .route(let envelope, let routes):
            outcome = await handle(record, envelope: envelope, routes: routes, from: 0, log: prepared.log, parkKey: prepared.parkKey)
        }
        prepared.log.span?.end(outcome)
        return outcome
    }

    /// Told each record's outcome (by its index in the batch) as soon as it is durable, in order.
    public typealias OutcomeReport = @Sendable (_ index: Int, _ outcome: RecordOutcome) -> Void

    /// Gives each of `records` (consecutive records of one lane, in offset order) its outcome,
    /// committing runs of them together as ``Configuration/groupCommit`` allows.
    ///
    /// Records whose envelope decodes and whose handlers succeed form a group, a savepoint per
    /// handler; the group ends after ``GroupCommit/maxRecords`` records, once its transaction has
    /// been open ``GroupCommit/maxDuration``, at the end of `records`, or before a record that
    /// needs anything else (a dead letter, a retry). Groups of other lanes that are ready at the
    /// same time share the transaction, which commits once for all of them. A handler that throws
    /// rolls back only its own savepoint: the records before it commit, and it is retried alone
    /// with backoff.
    ///
    /// - Returns: One outcome per record, in order. After the first ``RecordOutcome/abandoned``
    ///   every later record is abandoned too.
    public func process(_ records: [Record], reporting report: OutcomeReport? = nil) async -> [RecordOutcome] {
        var outcomes: [RecordOutcome] = []
        outcomes.reserveCapacity(records.count)
        let grouped = configuration.groupCommit.maxRecords > 1 && !configuration.dryRun && records.count > 1
        // Alone, each record is prepared (and its span ended) by `process(_:)`.
        let prepared = grouped ? records.map(prepare) : []
        // Outcomes are reported as they become durable, so the caller can move the partition's
        // watermark before the whole batch is done (a halted dead-letter write, a long retry).
        func emit(_ outcome: RecordOutcome) {
            if outcomes.count < prepared.count { prepared[outcomes.count].log.span?.end(outcome) }
            report?(outcomes.count, outcome)
            outcomes.append(outcome)
        }
        guard grouped else {
            for record in records {
                emit(outcomes.last == .abandoned ? .abandoned : await process(record))
            }
            return outcomes
        }
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
                emit(await deadLetter(records[index], reason, log: prepared[index].log))
                index += 1
            case .route:
                let batch = await commitGroup(records, prepared: prepared, from: index)
                for outcome in batch.outcomes { emit(outcome) }
                index += batch.outcomes.count
                guard let stop = batch.stop else { continue }
                if case .abandoned = stop {
                    for _ in index..<records.count { emit(.abandoned) }
                    index = records.count
                    continue
                }
                let record = records[index]
                let log = prepared[index].log
                let parkKey = prepared[index].parkKey
                guard case .route(let envelope, let routes) = prepared[index].step else { continue }
                switch stop {
                case .failed(let route, let error, let started):
                    emit(await handle(
                        record, envelope: envelope, routes: routes, from: route, log: log,
                        pending: PendingFailure(error: error, started: started), handledBefore: batch.partlyHandled, parkKey: parkKey))
                case .mismatch(let route, let stored):
                    emit(await poison(record, mismatch(envelope, route: routes[route], stored: stored, attempts: 1), log: log, parkKey: parkKey))
                case .abandoned:
                    continue  // handled above
                case .commitFailed(let attempted):
                    // Nothing of the group committed (a deadlock with another lane, a conflict, an
                    // outage): its records go the one-at-a-time path, whose retries wait for the
                    // store and whose small transactions rarely collide again; then group again.
                    emit(await handle(record, envelope: envelope, routes: routes, from: 0, log: log, parkKey: parkKey))
                    var alone = 1
                    while alone < attempted, index + alone < records.count, outcomes.last != .abandoned,
                        case .route(let envelope, let routes) = prepared[index + alone].step
                    {
                        emit(await handle(
                            records[index + alone], envelope: envelope, routes: routes, from: 0, log: prepared[index + alone].log,
                            parkKey: prepared[index + alone].parkKey))
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

    private struct Prepared: Sendable {
        enum Step: Sendable {
            /// An outcome reached without a handler (skipped by policy, no handler, dry run).
            case finished(RecordOutcome)
            /// Rejected by the decoder: to the dead-letter topic.
            case reject(DeadLetterReason)
            /// To these handlers, in order.
            case route(Envelope, [EventRouter<Store.Transaction>.Route.Bound])
        }

        var step: Step
        var log: RecordLog
        /// The record's parking key, for a routable record when parking is on.
        var parkKey: ParkingKey? = nil
    }

    private func prepare(_ record: Record) -> Prepared {
        metrics.consumed(record)
        var log = RecordLog(base: logger, record: record)
        log.span = tracing?.startSpan(for: record)

        let envelope: Envelope
        switch decoder.result(decoding: record.value) {
        case .success(let decoded):
            envelope = decoded
        case .failure(let error):
            if error.code == .eventTypeUnknown && configuration.unknownEventTypes == .skip {
                log.logger.debug("skipping a record of an unknown event type", metadata: ["error": "\(error)"])
                metrics.skipped(record, code: error.code)
                return Prepared(step: .finished(.skipped(error.code)), log: log)
            }
            let ids = Self.identifiers(in: record.value)
            log.logger.warning("record rejected", metadata: [
                "error.code": "\(error.code)", "error.path": "\(error.path ?? "")", "error": "\(error.message)",
            ])
            return Prepared(step: .reject(DeadLetterReason(
                code: error.code, message: error.message, isRetriable: false, attempts: 1,
                eventID: ids.eventID, correlationID: ids.correlationID)), log: log)
        }
        log.envelope = RecordLog.EnvelopeIDs(envelope)
        log.span?.decoded(envelope)

        let routes = router.routes(for: envelope.eventType)
        guard !routes.isEmpty else {
            // A known type this service does not handle: nothing to do, and nothing lost.
            metrics.skipped(record, code: .noHandler)
            return Prepared(step: .finished(.skipped(.noHandler)), log: log)
        }
        if configuration.dryRun {
            metrics.handled(record)
            return Prepared(step: .finished(.handled), log: log)
        }
        return Prepared(
            step: .route(envelope, routes.map { $0.bind(envelope, upcasters) }), log: log,
            parkKey: configuration.parking.mode(for: record.topic) == .off ? nil : configuration.parking.key(of: record, envelope: envelope))
    }

    // MARK: - Group commit

    private struct GroupResult: Sendable {
        enum Stop: Sendable {
            /// The handler at this route index threw on its first attempt.
            case failed(route: Int, error: any Error, started: ContinuousClock.Instant)
            /// The handler at this route index met a record of the event with another payload.
            case mismatch(route: Int, stored: String)
            /// The transaction itself failed (begin or commit): nothing of the group's `attempted`
            /// records committed.
            case commitFailed(attempted: Int)
            /// The lane was cancelled (a revocation's or a shutdown's deadline) while its group
            /// waited for its transaction: the group's records have no outcome.
            case abandoned
        }

        /// Outcomes of the records that committed, from the group's first record on.
        var outcomes: [RecordOutcome] = []
        /// Why the group ended before the record after `outcomes`, when it did not end cleanly.
        var stop: Stop?
        /// Whether a handler of the stopping record ran and committed before the one that stopped it.
        var partlyHandled = false
        /// How long each handler that committed took.
        var durations: [(handler: String, duration: Duration)] = []
    }

    /// Runs consecutive routable records from `start` as one group of the next shared store
    /// transaction, until the group is full, a record is not routable, or a handler fails.
    private func commitGroup(_ records: [Record], prepared: [Prepared], from start: Int) async -> GroupResult {
        let outcome = await committer.submit(records: min(records.count - start, configuration.groupCommit.maxRecords)) {
            transaction, began in
            try await self.runGroup(records, prepared: prepared, from: start, in: transaction, began: began)
        }
        switch outcome {
        case .committed(let result):
            for (offset, outcome) in result.outcomes.enumerated() {
                let record = records[start + offset]
                switch outcome {
                case .handled: metrics.handled(record)
                case .parked: metrics.parked(record)
                case .skipped(let code):
                    metrics.skipped(record, code: code)
                    if let key = prepared[start + offset].parkKey { noteSkippedParked(topic: record.topic, key: key) }
                default: metrics.duplicate(record)
                }
            }
            for (handler, duration) in result.durations { metrics.handlerDuration(handler, duration) }
            return result
        case .failed(let error, let ran):
            // Nothing of the transaction committed. The group's records that ran (all of the
            // routable run when the body itself failed) go the one-at-a-time path.
            let attempted = ran.map { $0.outcomes.count + ($0.stop == nil ? 0 : 1) } ?? routableRun(prepared, from: start)
            logger.warning("group transaction failed; continuing one record at a time", metadata: [
                "error": "\(error)", "records": "\(attempted)",
            ])
            return GroupResult(stop: .commitFailed(attempted: max(1, attempted)))
        case .abandoned:
            return GroupResult(stop: .abandoned)
        }
    }

    /// How many records from `start` on a group could have taken.
    private func routableRun(_ prepared: [Prepared], from start: Int) -> Int {
        var count = 0
        while start + count < prepared.count, count < configuration.groupCommit.maxRecords,
            case .route = prepared[start + count].step
        {
            count += 1
        }
        return count
    }

    /// A handler that threw inside a group: at record `record` (an index into the lane's
    /// records), route `route`.
    private struct GroupHandlerFailure: Error {
        var record: Int
        var route: Int
        var handler: String
        var error: any Error
        var started: ContinuousClock.Instant
    }

    /// What one run of a group's records did inside its savepoint.
    private struct GroupRun {
        var result = GroupResult()
        /// The processed-event records to write, in the order they were made.
        var marks: [ProcessedEventMark] = []
        /// Index into `marks` of each key this run handled.
        var handledHere: [ProcessedEventKey: Int] = [:]
        var position: (partition: TopicPartition, offset: Offset)?
    }

    /// One lane's group inside the shared transaction `transaction`, which began at `began`.
    ///
    /// Round trips per group, not per record (they are what a PostgreSQL transaction waits on):
    /// - the store is asked once for the dedupe records of every record the group may take;
    /// - the group's processed-event records are written once, with its offset, at its end;
    /// - with ``GroupCommit/SavepointScope/handler`` (the default) each handler runs in its own
    ///   savepoint: one that throws rolls back its own writes, the group ends before its record,
    ///   which is retried alone. With ``GroupCommit/SavepointScope/group`` the group runs inside
    ///   one savepoint: a handler that throws rolls it back (its own writes with it) and the
    ///   records before the failing one run again inside a new one, so what commits is what a
    ///   savepoint per handler would have left, but their handlers are called again.
    ///
    /// What the group handled itself is looked up in its own marks first, so a record delivered
    /// twice within the group is a duplicate as before. Groups of one shared transaction run one
    /// after another, so a later group's lookup sees what an earlier one wrote.
    private func runGroup(
        _ records: [Record], prepared: [Prepared], from start: Int, in transaction: Store.Transaction,
        began: ContinuousClock.Instant
    ) async throws -> GroupResult {
        let group = configuration.group
        let limits = configuration.groupCommit

        var keys: [ProcessedEventKey] = []
        var candidate = start
        while candidate < records.count, candidate - start < limits.maxRecords,
            case .route(let envelope, let routes) = prepared[candidate].step
        {
            for route in routes { keys.append(ProcessedEventKey(handler: route.name, eventID: envelope.eventID)) }
            candidate += 1
        }
        let stored = try await transaction.processedEvents(group: group, keys: Array(Set(keys)))
        var parked: Set<ParkingKey> = []
        if configuration.parking.mode(for: records[start].topic) != .off {
            // In the same transaction as the appends: a release of one of these keys (in another
            // process) either finished before, or waits until this transaction ends.
            let parkKeys = (start..<candidate).compactMap { prepared[$0].parkKey }
            if !parkKeys.isEmpty {
                parked = try await lookUpParked(parkKeys, topic: records[start].topic, in: transaction)
            }
        }

        var failure: GroupHandlerFailure?
        var run: GroupRun
        while true {
            do {
                switch limits.savepoints {
                case .handler:
                    run = try await runRecords(
                        records, prepared: prepared, from: start, before: nil, stored: stored, parked: parked, in: transaction,
                        began: began)
                case .group:
                    run = try await transaction.withSavepoint {
                        try await self.runRecords(
                            records, prepared: prepared, from: start, before: failure.map { ($0.record, $0.route) },
                            stored: stored, parked: parked, in: transaction, began: began)
                    }
                }
            } catch let thrown as GroupHandlerFailure {
                // Rolled back to the group's savepoint: run what came before the failure again.
                prepared[thrown.record].log.logger(handler: thrown.handler)
                    .warning("handler failed; retrying alone", metadata: ["error": "\(thrown.error)", "attempt": "1"])
                failure = thrown
                if thrown.record == start && thrown.route == 0 {
                    run = GroupRun()  // nothing came before it
                    break
                }
                continue
            }
            break
        }
        if let failure, run.result.stop == nil {
            run.result.stop = .failed(route: failure.route, error: failure.error, started: failure.started)
        }
        if !run.marks.isEmpty {
            let counts = try await transaction.markProcessed(group: group, marks: run.marks, at: clock())
            for (mark, count) in zip(run.marks, counts) where stored[mark.key] == nil && count != mark.count {
                // Another consumer recorded the event meanwhile (two consumers of one partition
                // during a rebalance): nothing of this transaction may commit. Each lane redoes
                // its records one at a time, and this one finds the event processed.
                throw Self.concurrentlyProcessed(mark.key.eventID)
            }
        }
        if configuration.storesOffsets, let position = run.position {
            try await transaction.storeNextOffset(position.offset, for: position.partition, group: group)
        }
        return run.result
    }

    /// Runs the group's records from `start` (all the group may take, or only those before the
    /// handler at `before`, which failed in an earlier run): each handler in its own savepoint
    /// with ``GroupCommit/SavepointScope/handler``, or all of them inside the group's savepoint,
    /// which the caller holds, with ``GroupCommit/SavepointScope/group``.
    ///
    /// - Throws: With group savepoints, ``GroupHandlerFailure`` when a handler throws (the caller
    ///   rolls the group's savepoint back and runs what came before again); with handler
    ///   savepoints a failure ends the run with ``GroupResult/Stop/failed(route:error:started:)``.
    private func runRecords(
        _ records: [Record], prepared: [Prepared], from start: Int, before end: (record: Int, route: Int)?,
        stored: [ProcessedEventKey: ProcessedEvent], parked: Set<ParkingKey>, in transaction: Store.Transaction,
        began: ContinuousClock.Instant
    ) async throws -> GroupRun {
        let dedupe = configuration.dedupe
        let isReplay = configuration.isReplay
        let limits = configuration.groupCommit
        var run = GroupRun()
        var index = start
        while index < records.count, run.result.outcomes.count < limits.maxRecords,
            end.map({ index <= $0.record }) ?? (run.result.outcomes.isEmpty || ContinuousClock.now - began < limits.maxDuration)
        {
            guard case .route(let envelope, let routes) = prepared[index].step else { break }
            let record = records[index]
            if let parkKey = prepared[index].parkKey, parked.contains(parkKey) {
                // Its key waits for a release: appended to the key's sequence (a replay: skipped),
                // durable with the group's offset.
                if configuration.parking.mode(for: record.topic) == .park {
                    try await transaction.appendParked(record, key: parkKey, group: configuration.group, at: clock())
                    run.result.outcomes.append(.parked)
                } else {
                    run.result.outcomes.append(.skipped(.keyParked))
                }
                run.position = (record.topicPartition, record.offset.next)
                index += 1
                continue
            }
            let payloadHash = PayloadHash.of(record.value ?? [])
            let routeEnd = end.flatMap { $0.record == index ? $0.route : nil } ?? routes.count
            var sawHandled = false
            for routeIndex in 0..<routeEnd {
                let route = routes[routeIndex]
                let started = ContinuousClock.now
                let key = ProcessedEventKey(handler: route.name, eventID: envelope.eventID)
                let existingHash = run.handledHere[key].map { run.marks[$0].payloadHash } ?? stored[key]?.payloadHash
                if let existingHash {
                    if existingHash != payloadHash {
                        run.result.stop = .mismatch(route: routeIndex, stored: existingHash)
                        break
                    }
                    if dedupe == .respect { continue }
                }
                let context = HandlerContext(
                    envelope: envelope, record: record, log: prepared[index].log, isReplay: isReplay,
                    attempt: 1, handlerName: route.name, transaction: transaction)
                do {
                    switch configuration.groupCommit.savepoints {
                    case .handler: try await transaction.withSavepoint { try await route.attempt(context) }
                    case .group: try await route.attempt(context)
                    }
                } catch {
                    let failure = GroupHandlerFailure(record: index, route: routeIndex, handler: route.name, error: error, started: started)
                    guard case .handler = configuration.groupCommit.savepoints else { throw failure }
                    // Its own savepoint is rolled back: the group ends before this record, with
                    // the handlers before this one done; it is retried alone.
                    prepared[index].log.logger(handler: route.name)
                        .warning("handler failed; retrying alone", metadata: ["error": "\(error)", "attempt": "1"])
                    run.result.stop = .failed(route: routeIndex, error: error, started: started)
                    break
                }
                if let mark = run.handledHere[key] {
                    run.marks[mark].count += 1
                } else {
                    run.handledHere[key] = run.marks.count
                    run.marks.append(ProcessedEventMark(key: key, payloadHash: payloadHash))
                }
                sawHandled = true
                run.result.durations.append((route.name, ContinuousClock.now - started))
            }
            if run.result.stop != nil || routeEnd < routes.count {
                // A mismatch, a handler that failed in its savepoint, or the record whose handler
                // failed in an earlier run of the group: the group ends before it, with the
                // handlers before that one done.
                run.result.partlyHandled = sawHandled
                break
            }
            run.position = (record.topicPartition, record.offset.next)
            run.result.outcomes.append(sawHandled ? .handled : .duplicate)
            index += 1
        }
        return run
    }

    // MARK: - One record at a time

    /// A first attempt that already failed (inside a group), to continue from.
    private struct PendingFailure {
        var error: any Error
        var started: ContinuousClock.Instant
    }

    /// Runs `routes[first...]` for one record, each handler in its own transaction with retries;
    /// a record whose handler fails for good is poison (``poison(_:_:log:parkKey:)``).
    private func handle(
        _ record: Record, envelope: Envelope, routes: [EventRouter<Store.Transaction>.Route.Bound], from first: Int,
        log: RecordLog, pending: PendingFailure? = nil, handledBefore: Bool = false, parkKey: ParkingKey?
    ) async -> RecordOutcome {
        let result = await runRoutes(
            record, envelope: envelope, routes: routes, from: first, log: log, pending: pending, handledBefore: handledBefore,
            parkKey: parkKey, finish: configuration.storesOffsets ? .storeOffset : .nothing)
        switch result {
        case .outcome(let outcome): return outcome
        case .failed(let reason): return await poison(record, reason, log: log, parkKey: parkKey)
        }
    }

    /// What running one record's handlers one at a time came to.
    private enum RoutesResult {
        case outcome(RecordOutcome)
        /// A handler failed for good.
        case failed(DeadLetterReason)
    }

    /// What the transaction of a record's last handler writes besides the handler's own writes.
    private enum Finish {
        case nothing
        /// The partition's next offset (live consumption).
        case storeOffset
        /// Takes the record out of this key's parked sequence (a release).
        case unpark(ParkingKey)
    }

    /// Runs `routes[first...]` for one record, each handler in its own transaction with
    /// retries, the last one's transaction writing `finish`. When `parkKey` is parked, the
    /// record is appended to its sequence (or skipped, in a replay) instead.
    private func runRoutes(
        _ record: Record, envelope: Envelope, routes: [EventRouter<Store.Transaction>.Route.Bound], from first: Int,
        log: RecordLog, pending: PendingFailure?, handledBefore: Bool, parkKey: ParkingKey?, finish: Finish
    ) async -> RoutesResult {
        let payloadHash = PayloadHash.of(record.value ?? [])
        var sawHandled = handledBefore
        var pending = pending
        for index in first..<routes.count {
            let route = routes[index]
            let result = await run(
                route, envelope: envelope, record: record, payloadHash: payloadHash,
                finish: index == routes.count - 1 ? finish : .nothing, parkKey: parkKey, log: log, pending: pending)
            pending = nil
            switch result {
            case .handled: sawHandled = true
            case .duplicate: continue
            case .failed(let reason): return .failed(reason)
            case .abandoned: return .outcome(.abandoned)
            case .parked:
                metrics.parked(record)
                return .outcome(.parked)
            case .skippedParked:
                metrics.skipped(record, code: .keyParked)
                if let parkKey { noteSkippedParked(topic: record.topic, key: parkKey) }
                return .outcome(.skipped(.keyParked))
            }
        }
        if sawHandled {
            metrics.handled(record)
            return .outcome(.handled)
        }
        metrics.duplicate(record)
        return .outcome(.duplicate)
    }

    /// A store outage one record's handler waits out: how long, how many failed tries, and the
    /// backoff before the next (100 ms, doubling up to the retry policy's longest delay).
    private struct StoreOutage {
        var started: ContinuousClock.Instant
        var failures = 0
        private var delay = Duration.milliseconds(100)

        init(started: ContinuousClock.Instant) {
            self.started = started
        }

        mutating func nextDelay(maximum: Duration) -> Duration {
            failures += 1
            defer { delay = min(delay * 2, maximum) }
            return min(delay, maximum)
        }
    }

    private enum HandlerResult {
        case handled, duplicate, abandoned
        case failed(DeadLetterReason)
        /// Its key is parked: appended to the key's sequence.
        case parked
        /// Its key is parked: skipped (``Parking/Mode/skip``).
        case skippedParked
    }

    private enum TransactionResult: Sendable {
        case handled, duplicate, parked, skippedParked
        case mismatch(stored: String)
    }

    private func mismatch(
        _ envelope: Envelope, route: EventRouter<Store.Transaction>.Route.Bound, stored: String, attempts: Int
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
        _ route: EventRouter<Store.Transaction>.Route.Bound, envelope: Envelope, record: Record, payloadHash: String,
        finish: Finish, parkKey: ParkingKey?, log: RecordLog, pending: PendingFailure? = nil
    ) async -> HandlerResult {
        let group = configuration.group
        let parkingMode = configuration.parking.mode(for: record.topic)
        let storesOffsets = configuration.storesOffsets
        // A release runs records of a parked key on purpose: it does not look parking up.
        let checkedKey: ParkingKey? = if case .unpark = finish { nil } else if parkingMode == .off { nil } else { parkKey }
        let now = clock
        /// Writes `finish` in `transaction`.
        func complete(_ transaction: Store.Transaction) async throws {
            switch finish {
            case .nothing: break
            case .storeOffset: try await transaction.storeNextOffset(record.offset.next, for: record.topicPartition, group: group)
            case .unpark(let key):
                _ = try await transaction.removeParked(
                    group: group, topic: record.topic, key: key, partition: record.partition, offset: record.offset)
            }
        }
        let dedupe = configuration.dedupe
        let isReplay = configuration.isReplay
        let started = pending?.started ?? ContinuousClock.now
        var attempt = 1
        var failure = pending?.error
        var outage: StoreOutage?
        /// Time spent waiting for the store, which the handler's retry budget does not count.
        var outageTime = Duration.zero
        /// Ends an outage once the store answered (with a result or a failure of the handler).
        func storeAnswered() {
            guard let ended = outage else { return }
            outageTime += ContinuousClock.now - ended.started
            log.logger(handler: route.name).notice("store answers again; partition continues", metadata: [
                "store.failures": "\(ended.failures)", "store.outage": "\(ContinuousClock.now - ended.started)",
            ])
            metrics.halted(record.topicPartition, reason: nil)
            outage = nil
        }
        while true {
            if let error = failure, let unavailable = error as? SluiceError, unavailable.code == .storeUnavailable {
                // The store is down (a database restarting, a file locked or read-only): no event's
                // fault, so it uses no attempt of the handler's budget and dead-letters nothing. The
                // partition halts here and tries again with backoff until the store answers; a stop
                // ends the wait at once and the record is delivered again.
                var current = outage ?? StoreOutage(started: ContinuousClock.now)
                let delay = current.nextDelay(maximum: configuration.retry.maxDelay)
                log.logger(handler: route.name).log(
                    level: current.failures == 1 ? .critical : .warning,
                    "store unavailable; partition halted until it answers", metadata: [
                        "error.code": "\(unavailable.code)", "error": "\(unavailable.message)",
                        "store.failures": "\(current.failures)", "retry.in": "\(delay)",
                    ])
                if outage == nil { metrics.halted(record.topicPartition, reason: Self.storeHaltReason) }
                metrics.storeUnavailable(record)
                outage = current
                do {
                    try await PartitionLane.halted { try await Task.sleep(for: delay) }
                } catch {
                    metrics.halted(record.topicPartition, reason: nil)
                    return .abandoned
                }
                failure = nil
            } else if let error = failure {
                storeAnswered()
                let sluiceError = error as? SluiceError
                let retriable = sluiceError?.isRetriable ?? true
                let code = sluiceError?.code ?? .handlerFailed
                let message = sluiceError?.message ?? String(describing: error)
                let delay = retriable
                    ? configuration.retry.delay(afterAttempt: attempt, elapsed: ContinuousClock.now - started - outageTime, random: random())
                    : nil
                guard let delay else {
                    log.logger(handler: route.name).error("handler failed for good", metadata: [
                        "error.code": "\(code)", "error": "\(message)", "attempts": "\(attempt)",
                    ])
                    return .failed(DeadLetterReason(
                        code: retriable ? .handlerRetriesExhausted : code,
                        message: retriable ? "\(attempt) attempt(s) failed; last error \(code): \(message)" : message,
                        isRetriable: retriable, attempts: attempt, handler: route.name,
                        eventID: envelope.eventID, correlationID: envelope.correlationID))
                }
                log.logger(handler: route.name).warning("handler failed; retrying", metadata: [
                    "error.code": "\(code)", "error": "\(message)", "attempt": "\(attempt)", "retry.in": "\(delay)",
                ])
                metrics.retried(record, handler: route.name)
                do {
                    // The backoff holds the partition: a stop ends it at once.
                    try await PartitionLane.halted { try await Task.sleep(for: delay) }
                } catch {
                    return .abandoned
                }
                attempt += 1
                failure = nil
            }
            let context = (attempt: attempt, log: log)
            do {
                let result = try await store.withTransaction { transaction -> TransactionResult in
                    if let checkedKey, !(try await self.lookUpParked([checkedKey], topic: record.topic, in: transaction).isEmpty) {
                        // Parked (by this record's predecessor, or a release that failed again
                        // meanwhile): it waits in the key's sequence, its outcome final.
                        if parkingMode == .park { try await transaction.appendParked(record, key: checkedKey, group: group, at: now()) }
                        if storesOffsets { try await transaction.storeNextOffset(record.offset.next, for: record.topicPartition, group: group) }
                        return parkingMode == .park ? .parked : .skippedParked
                    }
                    let existing = try await transaction.processedEvent(group: group, handler: route.name, eventID: envelope.eventID)
                    if let existing {
                        if existing.payloadHash != payloadHash { return .mismatch(stored: existing.payloadHash) }
                        if dedupe == .respect {
                            try await complete(transaction)
                            return .duplicate
                        }
                    }
                    let handlerContext = HandlerContext(
                        envelope: envelope, record: record, log: context.log, isReplay: isReplay,
                        attempt: context.attempt, handlerName: route.name, transaction: transaction)
                    try await route.attempt(handlerContext)
                    let count = try await transaction.markProcessed(
                        group: group, handler: route.name, eventID: envelope.eventID, payloadHash: payloadHash, at: self.clock())
                    if existing == nil && count != 1 { throw Self.concurrentlyProcessed(envelope.eventID) }
                    try await complete(transaction)
                    return .handled
                }
                storeAnswered()
                switch result {
                case .handled:
                    metrics.handlerDuration(route.name, ContinuousClock.now - started)
                    return .handled
                case .duplicate:
                    return .duplicate
                case .parked:
                    return .parked
                case .skippedParked:
                    return .skippedParked
                case .mismatch(let stored):
                    return .failed(mismatch(envelope, route: route, stored: stored, attempts: attempt))
                }
            } catch {
                failure = error
            }
        }
    }

    // MARK: - Poison and parking

    /// Gives a record that failed for good its outcome: dead-lettered, and with
    /// ``Parking/Mode/park`` and a parking key, its key parked.
    ///
    /// The dead letter is written first (it carries `sluice.parked: true`), then one store
    /// transaction parks the key with the record at the head of its sequence and stores the
    /// partition's next offset. A crash between the two delivers the record again: it fails
    /// again, is dead-lettered again (dead letters are at-least-once) and parks its key then.
    /// A store that cannot be written halts the partition until it can, as an outage does.
    private func poison(_ record: Record, _ reason: DeadLetterReason, log: RecordLog, parkKey: ParkingKey?) async -> RecordOutcome {
        guard configuration.parking.mode(for: record.topic) == .park, let parkKey, !configuration.dryRun else {
            return await deadLetter(record, reason, log: log)
        }
        let outcome = await deadLetter(record, reason, log: log, parked: true)
        guard case .deadLettered = outcome else { return outcome }
        let group = configuration.group
        let storesOffsets = configuration.storesOffsets
        let failure = ParkingFailure(code: reason.code, message: reason.message, handler: reason.handler, failedAt: clock())
        var outage: StoreOutage?
        while true {
            do {
                let keys = try await store.withTransaction { transaction in
                    try await transaction.park(record, key: parkKey, group: group, failure: failure)
                    if storesOffsets { try await transaction.storeNextOffset(record.offset.next, for: record.topicPartition, group: group) }
                    return try await transaction.parkedKeys(group: group, topic: record.topic).count
                }
                if let ended = outage {
                    log.logger.notice("store answers again; key parked, partition continues", metadata: ["store.failures": "\(ended.failures)"])
                    metrics.halted(record.topicPartition, reason: nil)
                }
                metrics.parked(record)
                metrics.parkedKeys(topic: record.topic, count: keys)
                log.logger.error("key parked: its later records wait for `parked release`", metadata: [
                    "parking.key": "\(parkKey)", "parking.scope": "\(configuration.parking.scope.rawValue)",
                    "error.code": "\(reason.code)", "parked.keys": "\(keys)",
                ])
                return outcome
            } catch {
                var current = outage ?? StoreOutage(started: ContinuousClock.now)
                let delay = current.nextDelay(maximum: configuration.retry.maxDelay)
                log.logger.log(level: current.failures == 1 ? .critical : .warning, "cannot park the key; partition halted until the store answers", metadata: [
                    "parking.key": "\(parkKey)", "error": "\(error)", "store.failures": "\(current.failures)", "retry.in": "\(delay)",
                ])
                if outage == nil { metrics.halted(record.topicPartition, reason: "cannot park key \(parkKey): \(error)") }
                outage = current
                do {
                    try await PartitionLane.halted { try await Task.sleep(for: delay) }
                } catch {
                    metrics.halted(record.topicPartition, reason: nil)
                    return .abandoned
                }
            }
        }
    }

    /// Runs the parked sequence of `key` on `topic` through the handlers, head first, each
    /// record in store transactions with the usual dedupe that also take it out of the sequence;
    /// the key is released once its sequence is empty (records appended meanwhile by a running
    /// service are run too). When a record fails for good again, the key stays parked from that
    /// record on, with this failure; nothing is dead-lettered (the head's dead letter exists).
    ///
    /// `claimant` names this release in the store: a second release of the key (another
    /// process) is refused while this one runs, unless its claim is older than `claimTimeout`
    /// (a release that died).
    ///
    /// - Throws: `SluiceError` with `KEY_NOT_PARKED` or
    ///   `PARKED_RELEASE_IN_PROGRESS`; a store error.
    public func releaseParked(
        topic: String, key: ParkingKey, claimant: String, claimTimeout: Duration = .seconds(600)
    ) async throws -> ParkedRelease {
        let group = configuration.group
        var release = ParkedRelease(topic: topic, key: key)
        /// Claims the key, or renews the claim; `false` when renewing found the key released.
        func claim(renewing: Bool) async throws -> Bool {
            let now = clock()
            let stale = now.addingTimeInterval(-Double(claimTimeout.components.seconds))
            let answer = try await store.withTransaction { transaction in
                try await transaction.claimParkedKey(group: group, topic: topic, key: key, claimant: claimant, at: now, staleBefore: stale)
            }
            switch answer {
            case .claimed: return true
            case .notParked:
                if renewing { return false }
                throw SluiceError(code: .keyNotParked, message: "key \(key) is not parked for group \(group) on \(topic)")
            case .heldBy(let other, let since):
                throw SluiceError(
                    code: .parkedReleaseInProgress,
                    message: "key \(key) on \(topic) is being released by \(other) since \(DeadLetterRecord.rfc3339(since)); try again when it ends")
            }
        }
        _ = try await claim(renewing: false)
        var first = true
        while true {
            if !first, !(try await claim(renewing: true)) { break }
            first = false
            let head = try await store.withTransaction { transaction in
                try await transaction.parkedRecords(group: group, topic: topic, key: key, limit: 1).first
            }
            guard let head else { break }
            let record = head.record
            let prepared = prepare(record)
            var failed: DeadLetterReason?
            switch prepared.step {
            case .finished(let outcome):
                _ = try await store.withTransaction { transaction in
                    try await transaction.removeParked(group: group, topic: topic, key: key, partition: record.partition, offset: record.offset)
                }
                prepared.log.span?.end(outcome)
                release.count(outcome)
            case .reject(let reason):
                prepared.log.span?.end(.parked)
                failed = reason
            case .route(let envelope, let routes):
                let result = await runRoutes(
                    record, envelope: envelope, routes: routes, from: 0, log: prepared.log, pending: nil, handledBefore: false,
                    parkKey: nil, finish: .unpark(key))
                switch result {
                case .outcome(let outcome): prepared.log.span?.end(outcome)
                case .failed: prepared.log.span?.end(.parked)  // failed again: it stays parked
                }
                switch result {
                case .outcome(.abandoned):
                    do {
                        try await store.withTransaction {
                            try await $0.releaseFailed(group: group, topic: topic, key: key, claimant: claimant, failure: nil)
                        }
                    } catch {
                        // The claim then lapses by itself after `claimTimeout`; until then another
                        // release of the key is refused.
                        prepared.log.logger.warning("the interrupted release could not give up its claim", metadata: [
                            "parking.key": "\(key)", "error": "\(error)", "claim.timeout": "\(claimTimeout)",
                        ])
                    }
                    release.interrupted = true
                    release.remaining = try await remaining(topic: topic, key: key)
                    return release
                case .outcome(let outcome): release.count(outcome)
                case .failed(let reason): failed = reason
                }
            }
            if let failed {
                let failure = ParkingFailure(code: failed.code, message: failed.message, handler: failed.handler, failedAt: clock())
                try await store.withTransaction { transaction in
                    try await transaction.releaseFailed(group: group, topic: topic, key: key, claimant: claimant, failure: failure)
                }
                release.failure = ParkedRelease.Failure(partition: record.partition, offset: record.offset, reason: failed)
                release.remaining = try await remaining(topic: topic, key: key)
                prepared.log.logger.error("parked key released up to a record that failed again; it stays parked from there", metadata: [
                    "parking.key": "\(key)", "error.code": "\(failed.code)", "error": "\(failed.message)",
                ])
                return release
            }
        }
        let keys = try await store.withTransaction { try await $0.parkedKeys(group: group, topic: topic).count }
        metrics.parkedKeys(topic: topic, count: keys)
        return release
    }

    /// Counts the group's parked keys in the store and sets `sluice.parked.keys` for each of
    /// `topics` whose records park (0 when none of its keys is parked), and for any other topic
    /// with parked keys.
    public func recountParkedKeys(topics: [String]) async throws {
        let group = configuration.group
        let keys = try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }
        var counts: [String: Int] = [:]
        for topic in topics where configuration.parking.mode(for: topic) == .park { counts[topic] = 0 }
        for key in keys { counts[key.topic, default: 0] += 1 }
        for (topic, count) in counts { metrics.parkedKeys(topic: topic, count: count) }
    }

    private func remaining(topic: String, key: ParkingKey) async throws -> Int {
        try await store.withTransaction { transaction in
            try await transaction.parkedRecords(group: configuration.group, topic: topic, key: key, limit: nil).count
        }
    }

    /// Writes the dead letter, holding the partition until the broker acknowledged it.
    ///
    /// How a failed write is answered depends on its ``DeadLetterWriteError/Kind``: a letter too
    /// large for the topic is written again at once as a stub; anything else halts the partition
    /// and retries with backoff until the write succeeds, logging at `critical` each time (with
    /// the fix, for a refusal that only a change of authorization or configuration ends).
    private func deadLetter(_ record: Record, _ reason: DeadLetterReason, log: RecordLog, parked: Bool = false) async -> RecordOutcome {
        if configuration.dryRun {
            metrics.deadLettered(record, code: reason.code)
            return .deadLettered(reason.code)
        }
        let full = DeadLetterRecord(
            original: record, topic: configuration.deadLetters.topic(for: record.topic),
            group: configuration.group, reason: reason, failedAt: clock(), traceParent: log.span?.traceParent(), parked: parked)
        var letter = full
        var delay = Duration.milliseconds(100)
        var halted = false
        // A stub replacing a letter that was too large is written without waiting.
        var waits = false
        let logger = log.logger
        let sink = deadLetterSink
        while true {
            do {
                if halted {
                    // Halted, the partition cannot move: a shutdown or a revocation ends the wait
                    // and the write in flight at once, and the record is delivered again later.
                    try await PartitionLane.halted { [delay, letter, waits] in
                        if waits { try await Task.sleep(for: delay) }
                        try await sink.send(letter)
                    }
                } else {
                    // A first write usually takes milliseconds; one still waiting a second
                    // into a shutdown is a broker retrying a refused write until its delivery
                    // timeout, and the shutdown does not wait for it.
                    try await PartitionLane.halted(grace: .seconds(1)) { [letter] in try await sink.send(letter) }
                }
                if halted {
                    logger.notice("dead-letter topic writable again; partition continues", metadata: ["dead_letter.topic": "\(letter.topic)"])
                    metrics.halted(record.topicPartition, reason: nil)
                }
                if letter.isTruncated {
                    logger.warning("record too large for the dead-letter topic: dead-lettered as a stub; the original stays at its offset", metadata: [
                        "dead_letter.topic": "\(letter.topic)", "value.size": "\(record.value?.count ?? 0)",
                        "stub.value.size": "\(letter.value?.count ?? 0)",
                    ])
                    metrics.deadLetterTruncated(record)
                }
                metrics.deadLettered(record, code: reason.code)
                return .deadLettered(reason.code)
            } catch {
                if error is CancellationError || Task.isCancelled {
                    if halted { metrics.halted(record.topicPartition, reason: nil) }
                    return .abandoned
                }
                let failure = error as? DeadLetterWriteError
                var fix: String?
                switch failure?.kind {
                case .tooLarge(let limit):
                    if let stub = full.stubs(fittingIn: limit).first(where: { $0.estimatedSize < letter.estimatedSize }) {
                        logger.warning("record too large for the dead-letter topic; writing a stub instead", metadata: [
                            "dead_letter.topic": "\(letter.topic)", "error": "\(error)",
                            "limit": "\(limit.map(String.init) ?? "unknown")", "value.size": "\(record.value?.count ?? 0)",
                        ])
                        letter = stub
                        waits = false
                        continue
                    }
                    fix = "raise max.message.bytes of topic \(letter.topic) (and message.max.bytes of the dead-letter producer): "
                        + "it refuses even the minimal stub of this record (\(letter.estimatedSize) bytes)"
                case .refused(let refusalFix):
                    fix = refusalFix
                case .transient, nil:
                    break
                }
                // Nothing past the poison record may be committed until its dead letter is safe.
                if let fix {
                    logger.critical("the dead-letter topic refuses the record; partition halted until this is fixed: \(fix)", metadata: [
                        "dead_letter.topic": "\(letter.topic)", "error.code": "\(failure?.code ?? "-")", "error": "\(error)",
                        "fix": "\(fix)", "retry.in": "\(delay)",
                    ])
                } else {
                    logger.critical("cannot write to the dead-letter topic; partition halted", metadata: [
                        "dead_letter.topic": "\(letter.topic)", "error": "\(error)", "retry.in": "\(delay)",
                    ])
                }
                if halted {
                    if waits { delay = min(delay * 2, configuration.deadLetters.maxRetryDelay) }
                } else {
                    metrics.halted(record.topicPartition, reason: fix.map { "the dead-letter topic refuses the record: \($0)" } ?? Self.deadLetterHaltReason)
                    halted = true
                }
                waits = true
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
    /// A handler threw an error that is not a `SluiceError`, and retrying was not possible.
    public static let handlerFailed: Self = "HANDLER_FAILED"
    /// A handler kept failing with retriable errors until the retry policy gave up.
    public static let handlerRetriesExhausted: Self = "HANDLER_RETRIES_EXHAUSTED"
    /// A known event type no handler of this service is registered for (skipped).
    public static let noHandler: Self = "NO_HANDLER"
}
