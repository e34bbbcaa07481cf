import Foundation
import Logging
import Sluice

/// Runs recorded history (a snapshot file or records) through a service's real decoder,
/// upcasters, handlers and store, in-process and without a broker: the staging replay test.
///
/// ```swift
/// let harness = try ReplayTestHarness(
///     registry: SchemaRegistry(directory: "EventSchemas"), upcasters: Fulfillment.upcasters(),
///     router: Fulfillment.router(), store: store)
/// let result = try await harness.replay(snapshot: "Tests/Fixtures/orders.jsonl")
/// #expect(result.deadLetters.isEmpty)
/// #expect(result.causalOrderViolations.isEmpty)
/// #expect(try await harness.idempotenceProblems(snapshot: "Tests/Fixtures/orders.jsonl").isEmpty)
/// ```
///
/// Records are handled one at a time in timestamp order (file order among equal timestamps),
/// the order a consumer merging partitions by time would see: deterministic, so a causal-order
/// check against it means something. Within a partition that is offset order, as in production;
/// across partitions production gives no order at all, which is exactly what the causal check
/// warns about. Dead letters are kept in ``RecordingDeadLetterSink``.
public struct ReplayTestHarness<Store: DedupeStore>: Sendable {
    /// The store the handlers write to: inspect it after a replay.
    public let store: Store
    /// Every dead letter of every replay so far.
    public let deadLetters: RecordingDeadLetterSink
    private let pipeline: EventPipeline<Store>

    /// A harness that runs records through the service's real decoder, upcasters, handlers and store.
    ///
    /// - Parameters:
    ///   - registry: The service's schemas (usually its `EventSchemas` directory).
    ///   - upcasters: The service's upcasters.
    ///   - router: The service's handlers.
    ///   - store: The store the handlers write to, fresh for each test.
    ///   - group: The consumer group the processed-event records belong to.
    ///   - dedupe: `respect` (default) or `reprocess`, as in a replay.
    ///   - logger: Where the pipeline logs. Default: nowhere.
    public init(
        registry: SchemaRegistry, upcasters: [Upcaster] = [], router: EventRouter<Store.Transaction>, store: Store,
        group: String = "staging-replay", dedupe: EventPipeline<Store>.DedupeMode = .respect,
        logger: Logger = Logger(label: "sluice.replay-test") { _ in SwiftLogNoOpLogHandler() }
    ) throws {
        self.store = store
        let deadLetters = RecordingDeadLetterSink()
        self.deadLetters = deadLetters
        var configuration = ReplayRunner<Store>.replayConfiguration(group: group, dedupe: dedupe)
        configuration.retry.initialDelay = .milliseconds(1)
        configuration.retry.maxAttempts = 2
        self.pipeline = EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry, upcasters: upcasters), router: router, store: store,
            deadLetterSink: deadLetters, logger: logger)
    }

    /// Replays a snapshot file.
    public func replay(snapshot path: String) async throws -> ReplayTestResult {
        try await replay(SnapshotReader(path: path).readAll())
    }

    /// Replays `records`.
    public func replay(_ records: [Record]) async throws -> ReplayTestResult {
        let ordered = records.enumerated().sorted { lhs, rhs in
            let left = lhs.element.timestamp?.milliseconds ?? 0
            let right = rhs.element.timestamp?.milliseconds ?? 0
            return left != right ? left < right : lhs.offset < rhs.offset
        }.map(\.element)
        let before = deadLetters.records.count
        var summary = ReplaySummary()
        var handled: [ReplayTestResult.HandledEvent] = []
        for record in ordered {
            let outcome = await pipeline.process(record)
            summary.add(record, outcome)
            if let ids = Self.identifiers(of: record) {
                handled.append(.init(eventID: ids.eventID, causationID: ids.causationID, record: record, outcome: outcome))
            }
        }
        let letters = Array(deadLetters.records.dropFirst(before))
        let eventIDs = Set(ordered.compactMap { Self.identifiers(of: $0)?.eventID })
        return ReplayTestResult(summary: summary, processed: handled, deadLetters: letters, eventIDsInSnapshot: eventIDs)
    }

    /// `event_id` and `causation_id` of a record's envelope, when it has them.
    static func identifiers(of record: Record) -> (eventID: String, causationID: String)? {
        guard let value = record.value, case .object(let object)? = try? JSONParser.parse(value),
            case .string(let eventID)? = object["event_id"], case .string(let causationID)? = object["causation_id"]
        else { return nil }
        return (eventID, causationID)
    }

    /// Replays the snapshot twice (respect mode) and checks that the second pass changed nothing:
    /// every record that was handled the first time is a duplicate the second time, and no new
    /// dead letter appeared beyond those of the first pass.
    ///
    /// - Returns: The problems found; empty when the replay is idempotent.
    public func idempotenceProblems(snapshot path: String) async throws -> [String] {
        let records = try SnapshotReader(path: path).readAll()
        let first = try await replay(records)
        let second = try await replay(records)
        var problems: [String] = []
        if second.summary.handled > 0 {
            problems.append("\(second.summary.handled) record(s) were handled again on the second replay: their processed-event records did not commit with the handler's transaction")
        }
        if second.deadLetters.count != first.deadLetters.count {
            problems.append("the second replay dead-lettered \(second.deadLetters.count) record(s), the first \(first.deadLetters.count)")
        }
        let firstKeys = Set(first.deadLetters.map { "\($0.header(DeadLetterHeader.originalPartition) ?? "")/\($0.header(DeadLetterHeader.originalOffset) ?? "")/\($0.errorCode?.rawValue ?? "")" })
        for letter in second.deadLetters {
            let key = "\(letter.header(DeadLetterHeader.originalPartition) ?? "")/\(letter.header(DeadLetterHeader.originalOffset) ?? "")/\(letter.errorCode?.rawValue ?? "")"
            if !firstKeys.contains(key) { problems.append("new dead letter on the second replay: \(key)") }
        }
        return problems
    }
}

/// What a ``ReplayTestHarness`` replay did.
public struct ReplayTestResult: Sendable {
    /// An event the replay gave an outcome, in processing order.
    public struct HandledEvent: Sendable, Hashable {
        /// The envelope's `event_id`.
        public var eventID: String
        /// The envelope's `causation_id`.
        public var causationID: String
        /// The record as replayed.
        public var record: Record
        /// What became of it.
        public var outcome: RecordOutcome
    }

    /// An event handled before the event its `causation_id` names.
    public struct CausalOrderViolation: Sendable, Hashable, CustomStringConvertible {
        /// The event processed too early.
        public var effect: HandledEvent
        /// The event it names as its cause, when that was handled at all.
        public var cause: HandledEvent?
        public var description: String {
            let effectAt = "\(effect.record.topicPartition)@\(effect.record.offset.rawValue)"
            guard let cause else { return "\(effect.eventID) (\(effectAt)) was processed, but its cause \(effect.causationID) was never handled" }
            return "\(effect.eventID) (\(effectAt)) was processed before its cause \(cause.eventID) (\(cause.record.topicPartition)@\(cause.record.offset.rawValue))"
        }
    }

    /// Counts per outcome and partition.
    public let summary: ReplaySummary
    /// Every record with an envelope id, in processing order, with its outcome.
    public let processed: [HandledEvent]
    /// The events handlers ran for (or found already processed), in order.
    public var handled: [HandledEvent] { processed.filter { $0.outcome == .handled || $0.outcome == .duplicate } }
    /// Dead letters this replay produced, in order.
    public let deadLetters: [DeadLetterRecord]
    let eventIDsInSnapshot: Set<String>

    /// Dead-letter codes by the record's `event_id` (or `partition/offset` when it had none).
    public var deadLetterCodes: [String: SluiceError.Code] {
        var codes: [String: SluiceError.Code] = [:]
        for letter in deadLetters {
            let key = letter.header(DeadLetterHeader.eventID)
                ?? "\(letter.header(DeadLetterHeader.originalPartition) ?? "?")/\(letter.header(DeadLetterHeader.originalOffset) ?? "?")"
            codes[key] = letter.errorCode
        }
        return codes
    }

    /// Events processed (handled, or failed) before the event their `causation_id` names was
    /// handled, when that event is in the snapshot (causes outside it are outside the check).
    public var causalOrderViolations: [CausalOrderViolation] {
        var position: [String: Int] = [:]
        for (index, event) in processed.enumerated() where event.outcome == .handled || event.outcome == .duplicate {
            if position[event.eventID] == nil { position[event.eventID] = index }
        }
        var violations: [CausalOrderViolation] = []
        for (index, event) in processed.enumerated() where eventIDsInSnapshot.contains(event.causationID) {
            guard let causeIndex = position[event.causationID] else {
                violations.append(CausalOrderViolation(effect: event, cause: nil))
                continue
            }
            if causeIndex > index { violations.append(CausalOrderViolation(effect: event, cause: processed[causeIndex])) }
        }
        return violations
    }
}
