import Foundation
import Logging
@testable import Sluice
import SluiceTesting
import Synchronization
import Testing

/// Store-wide group commit: the ready groups of many lanes share one store transaction, and every
/// way such a transaction can end leaves each partition exact: a commit that fails for all of
/// them, a revocation of one of its partitions, a shutdown while it runs.
@Suite("Store-wide group commit: many lanes, one transaction")
struct StoreGroupCommitTests {
    typealias Support = GroupCommitTests

    /// An in-memory store that counts commits, notes which partitions each transaction carried,
    /// can hold a transaction open before it commits, and can fail a chosen commit.
    final class SharedStore: DedupeStore {
        let base = InMemoryDedupeStore()
        private struct State {
            var transactions = 0
            var commits = 0
            var partitionsOfTransaction: [Int: Set<Int32>] = [:]
            var failing: Set<Int> = []
            var holding: Set<Int> = []
            var held: [Int: CheckedContinuation<Void, Never>] = [:]
        }
        private let state = Mutex(State())
        @TaskLocal static var transactionNumber: Int?

        var commits: Int { state.withLock { $0.commits } }
        var transactions: Int { state.withLock { $0.transactions } }
        func partitions(ofTransaction number: Int) -> Set<Int32> { state.withLock { $0.partitionsOfTransaction[number] ?? [] } }
        var partitionsPerTransaction: [Set<Int32>] {
            state.withLock { state in (1...max(1, state.transactions)).map { state.partitionsOfTransaction[$0] ?? [] } }
        }

        /// The `number`th transaction (from 1) fails after its body, as a failed COMMIT would.
        func failCommit(_ number: Int) { state.withLock { _ = $0.failing.insert(number) } }
        /// The `number`th transaction waits before committing until ``release(_:)``.
        func hold(_ number: Int) { state.withLock { _ = $0.holding.insert(number) } }
        func release(_ number: Int) {
            let continuation = state.withLock { state in
                state.holding.remove(number)
                return state.held.removeValue(forKey: number)
            }
            continuation?.resume()
        }
        func isHeld(_ number: Int) -> Bool { state.withLock { $0.held[number] != nil } }

        /// Called by the test handler: the record's partition ran in the current transaction.
        func noteHandled(partition: Int32) {
            guard let number = Self.transactionNumber else { return }
            state.withLock { _ = $0.partitionsOfTransaction[number, default: []].insert(partition) }
        }

        struct CommitFailed: Error {}

        func withTransaction<T: Sendable>(_ body: (InMemoryDedupeStore.Transaction) async throws -> T) async throws -> T {
            let number = state.withLock { state in
                state.transactions += 1
                return state.transactions
            }
            let result = try await base.withTransaction { transaction in
                let result = try await Self.$transactionNumber.withValue(number) { try await body(transaction) }
                let (fail, hold) = state.withLock { ($0.failing.contains(number), $0.holding.contains(number)) }
                if hold {
                    await withCheckedContinuation { continuation in
                        let stillHeld = state.withLock { state in
                            guard state.holding.contains(number) else { return false }
                            state.held[number] = continuation
                            return true
                        }
                        if !stillHeld { continuation.resume() }
                    }
                }
                if fail { throw CommitFailed() }
                return result
            }
            state.withLock { $0.commits += 1 }
            return result
        }

        func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
            try await base.storedOffsets(group: group, partitions: partitions)
        }

        func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
            try await base.pruneProcessedEvents(olderThan: cutoff)
        }
    }

    static func records(partition: Int32, count: Int) -> [Record] {
        (0..<count).map { seq in
            let id = "p\(partition)-\(seq)"
            let value = #"{"event_id":"\#(id)","event_type":"orders.item_counted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c-\#(id)","causation_id":"cause-\#(id)","subject":"item:\#(id)","data":{"seq":\#(seq)}}"#
            return Record(topic: "t", partition: partition, offset: Offset(Int64(seq)), value: Array(value.utf8))
        }
    }

    /// Handler calls by record, across partitions.
    final class Calls: Sendable {
        let counts = Mutex<[String: Int]>([:])
        func record(_ key: String) { counts.withLock { $0[key, default: 0] += 1 } }
        var all: [String: Int] { counts.withLock { $0 } }
    }

    static func pipeline(store: SharedStore, calls: Calls, sink: RecordingDeadLetterSink = RecordingDeadLetterSink()) throws -> EventPipeline<SharedStore> {
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_counted", version: 1, schemaText: Support.schema)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_counted", as: Support.Item.self, handler: "count") { event, context in
            calls.record(event.eventID)
            store.noteHandled(partition: context.record.partition)
            let key = "count-\(event.eventID)"
            let before: Int
            if case .number(let number)? = context.transaction.value(forKey: key), let value = number.int64Value { before = Int(value) } else { before = 0 }
            context.transaction.setValue(.number(JSONNumber(Int64(before + 1))), forKey: key)
        }
        var configuration = EventPipeline<SharedStore>.Configuration(group: "g")
        configuration.retry.initialDelay = .milliseconds(1)
        return EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: router, store: store,
            deadLetterSink: sink, logger: Logger(label: "store-group-commit") { _ in SwiftLogNoOpLogHandler() })
    }

    /// Every record's effect is in the store exactly once, and each partition's stored offset is
    /// past its last record.
    static func expectExact(_ store: SharedStore, partitions: Range<Int32>, count: Int) async throws {
        for partition in partitions {
            for seq in 0..<count {
                let value = store.base.committedValue(forKey: "count-p\(partition)-\(seq)")
                #expect(value == .number(JSONNumber(Int64(1))), "p\(partition)-\(seq): \(String(describing: value))")
            }
            let stored = try await store.base.storedOffsets(group: "g", partitions: [TopicPartition(topic: "t", partition: partition)])
            #expect(stored.values.first == Offset(Int64(count)), "partition \(partition)")
        }
    }

    /// Waits (up to 10 s) for `condition`: a test's precondition, not a timing assertion.
    static func waitUntil(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("a condition the test waits for did not hold within 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    // MARK: The queue's state machine

    @Test("The queue state: the first submission starts the one runner, later ones wait; the runner takes the oldest groups that fit, then stops when none waits")
    func queueState() {
        var state = GroupCommitQueueState<String>()
        #expect(state.submit("a", records: 60) == .startRunner)
        #expect(state.submit("b", records: 30) == .none)
        #expect(state.submit("c", records: 20) == .none)
        #expect(state.runners == 1)
        guard case .transact(let first) = state.next(maxRecords: 100) else { Issue.record("nothing to run"); return }
        #expect(first == ["a", "b"], "c would pass the transaction's bound")
        #expect(state.submit("d", records: 500) == .none, "the runner is still running")
        guard case .transact(let second) = state.next(maxRecords: 100) else { Issue.record("nothing to run"); return }
        #expect(second == ["c"])
        guard case .transact(let third) = state.next(maxRecords: 100) else { Issue.record("nothing to run"); return }
        #expect(third == ["d"], "a group larger than the bound still runs, alone")
        guard case .stop = state.next(maxRecords: 100) else { Issue.record("expected the runner to stop"); return }
        #expect(state.runners == 0)
        #expect(state.submit("e", records: 1) == .startRunner, "after a stop, the next submission starts a runner again")
    }

    @Test("With two runners allowed (a store with two connections), the second submission starts a second runner, the third waits")
    func queueStateConcurrent() {
        var state = GroupCommitQueueState<String>(maxRunners: 2)
        #expect(state.submit("a", records: 10) == .startRunner)
        guard case .transact(let first) = state.next(maxRecords: 100) else { Issue.record("nothing to run"); return }
        #expect(first == ["a"])
        #expect(state.submit("b", records: 10) == .startRunner)
        #expect(state.submit("c", records: 10) == .none)
        #expect(state.runners == 2)
        guard case .transact(let second) = state.next(maxRecords: 100) else { Issue.record("nothing to run"); return }
        #expect(second == ["b", "c"])
        guard case .stop = state.next(maxRecords: 100) else { Issue.record("expected a runner to stop"); return }
        guard case .stop = state.next(maxRecords: 100) else { Issue.record("expected the other runner to stop"); return }
        #expect(state.runners == 0)
    }

    @Test("Under a steady stream (the queue never runs empty) a group the runner took is no longer held by the queue")
    func queueStateReleasesTakenWork() {
        final class Work {}
        var state = GroupCommitQueueState<Work>()
        weak var taken: Work?
        do {
            let first = Work()
            taken = first
            _ = state.submit(first, records: 10)
        }
        var next = Work()
        _ = state.submit(next, records: 10)
        for _ in 0..<3 {
            guard case .transact(let groups) = state.next(maxRecords: 10) else { Issue.record("nothing to run"); return }
            #expect(groups.count == 1)
            // Another group arrives before the runner asks again: the queue is never empty.
            next = Work()
            _ = state.submit(next, records: 10)
        }
        #expect(taken == nil, "the first group is gone once its runner is done with it")
        #expect(state.waitingCount == 2, "the two that arrived last wait")
    }

    // MARK: Through the pipeline

    /// `partitions` lanes calling the pipeline at once, `records` records each, as the
    /// dispatcher's lanes do; their outcomes.
    static func lanes(_ pipeline: EventPipeline<SharedStore>, partitions: Int32, records: Int) -> Task<[[RecordOutcome]], Never> {
        Task {
            await withTaskGroup(of: [RecordOutcome].self) { group in
                for partition in Int32(0)..<partitions {
                    group.addTask { await pipeline.process(Self.records(partition: partition, count: records)) }
                }
                var all: [[RecordOutcome]] = []
                for await outcomes in group { all.append(outcomes) }
                return all
            }
        }
    }

    /// A dispatcher over `pipeline` with four assigned partitions, as `EventConsumer` builds it.
    static func dispatcher(_ pipeline: EventPipeline<SharedStore>, watermarks: OffsetWatermarks) -> (PartitionDispatcher, [TopicPartition]) {
        let dispatcher = PartitionDispatcher(
            watermarks: watermarks, flowControl: NoFlowControl(), logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
            batchProcessor: { records, report in await pipeline.process(records, reporting: report) })
        let partitions = (0..<4).map { TopicPartition(topic: "t", partition: Int32($0)) }
        dispatcher.assign(partitions)
        return (dispatcher, partitions)
    }

    @Test("Groups of eight lanes that are ready together share transactions: fewer commits than groups, every effect once, every offset stored")
    func lanesShareTransactions() async throws {
        let store = SharedStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, calls: calls)
        store.hold(1)
        let lanes = Self.lanes(pipeline, partitions: 8, records: 50)
        // While the first transaction is held, the other lanes' groups queue up behind it.
        try await Self.waitUntil { store.isHeld(1) }
        try await Task.sleep(for: .milliseconds(200))
        store.release(1)
        let outcomes = await lanes.value
        #expect(outcomes.allSatisfy { $0 == Array(repeating: RecordOutcome.handled, count: 50) })
        #expect(store.commits < 8, "8 groups in \(store.commits) commits")
        #expect(store.partitionsPerTransaction.contains { $0.count >= 7 }, "the queued groups shared one transaction: \(store.partitionsPerTransaction)")
        #expect(calls.all.values.allSatisfy { $0 == 1 })
        try await Self.expectExact(store, partitions: 0..<8, count: 50)
        #expect(store.base.processedEvents.count == 400)
    }

    @Test("A commit that fails for a transaction of many partitions: nothing of it stays, each lane redoes its own records, every effect ends up once")
    func commitFailureAcrossPartitions() async throws {
        let store = SharedStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, calls: calls)
        // The first two transactions fail at commit, whatever groups they carry.
        store.failCommit(1)
        store.failCommit(2)
        let lanes = Self.lanes(pipeline, partitions: 6, records: 20)
        let outcomes = await lanes.value
        let failed = [store.partitions(ofTransaction: 1), store.partitions(ofTransaction: 2)]
        #expect(failed.contains { $0.count >= 2 }, "a failed transaction spanned several partitions: \(store.partitionsPerTransaction)")
        #expect(outcomes.allSatisfy { $0 == Array(repeating: RecordOutcome.handled, count: 20) })
        // The handlers of the failed transaction ran twice (once rolled back); their effects once.
        #expect(calls.all.count == 120)
        try await Self.expectExact(store, partitions: 0..<6, count: 20)
        #expect(store.base.processedEvents.count == 120)
    }

    /// A dispatcher over the pipeline, as `EventConsumer` builds it, with a flow control that
    /// needs no broker.
    final class NoFlowControl: PartitionFlowControl {
        func pause(_ partitions: [TopicPartition]) async throws {}
        func resume(_ partitions: [TopicPartition]) async throws {}
    }

    @Test("Revoking a partition while its group waits on a stuck shared transaction: the revocation ends at its deadline, the group's records get no outcome, and nothing is lost or applied twice")
    func revocationMidTransaction() async throws {
        let store = SharedStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, calls: calls)
        let watermarks = OffsetWatermarks()
        let (dispatcher, partitions) = Self.dispatcher(pipeline, watermarks: watermarks)
        store.hold(1)
        // Partition 1 has more records than one group takes: some are still queued when it goes.
        dispatcher.dispatch(Self.records(partition: 1, count: 250))
        for partition in [Int32(0), 2, 3] { dispatcher.dispatch(Self.records(partition: partition, count: 30)) }
        try await Self.waitUntil { store.isHeld(1) }
        // The first transaction is stuck (as a hanging handler or a silent database would be)
        // while partition 1 is revoked with a 50 ms deadline.
        let safety = Task {
            try await Task.sleep(for: .seconds(10))
            store.release(1)
        }
        let positions = await dispatcher.revoke([partitions[1]], deadline: .now + .milliseconds(50))
        #expect(store.isHeld(1), "the revocation returned without waiting for the stuck transaction")
        safety.cancel()
        store.release(1)
        // Nothing of partition 1 was durable before the stuck transaction, so the revocation
        // commits nothing for it; what that transaction commits later is in the store, ahead of
        // Kafka, where the next owner resumes from.
        try await Self.waitUntil { [0, 2, 3].allSatisfy { watermarks.position(of: partitions[$0]) == Offset(30) } }
        await dispatcher.drainAll(deadline: .now + .seconds(5))
        let stored = try await store.base.storedOffsets(group: "g", partitions: [partitions[1]])
        #expect((positions[partitions[1]] ?? Offset(0)) <= (stored[partitions[1]] ?? Offset(0)))
        #expect(calls.all.values.allSatisfy { $0 == 1 }, "no record ran twice")
        let handledOf1 = calls.all.keys.filter { $0.hasPrefix("p1-") }.count
        #expect(handledOf1 < 250, "partition 1 went with records still queued")
        #expect(Offset(Int64(handledOf1)) == stored[partitions[1]] ?? Offset(0), "what ran for partition 1 is exactly what its store offset covers")
        try await Self.expectExact(store, partitions: 0..<1, count: 30)
        try await Self.expectExact(store, partitions: 2..<4, count: 30)
        #expect(store.base.processedEvents.count == 90 + handledOf1)
    }

    @Test("A lane cancelled while its group waits in the queue: the group never runs, and the other lanes' groups commit")
    func cancelledWhileQueued() async throws {
        let store = SharedStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, calls: calls)
        store.hold(1)
        let first = Task { await pipeline.process(Self.records(partition: 0, count: 10)) }
        try await Self.waitUntil { store.isHeld(1) }
        let queued = Task { await pipeline.process(Self.records(partition: 1, count: 10)) }
        let other = Task { await pipeline.process(Self.records(partition: 2, count: 10)) }
        try await Task.sleep(for: .milliseconds(100))
        queued.cancel()
        #expect(await queued.value == Array(repeating: RecordOutcome.abandoned, count: 10))
        store.release(1)
        #expect(await first.value == Array(repeating: RecordOutcome.handled, count: 10))
        #expect(await other.value == Array(repeating: RecordOutcome.handled, count: 10))
        #expect(!calls.all.keys.contains { $0.hasPrefix("p1-") }, "the abandoned group did not run")
        try await Self.expectExact(store, partitions: 0..<1, count: 10)
        try await Self.expectExact(store, partitions: 2..<3, count: 10)
    }

    @Test("Shutdown while a shared transaction is open: every lane waits for it and drains, every record handled once, every watermark at the end")
    func shutdownMidTransaction() async throws {
        let store = SharedStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, calls: calls)
        let watermarks = OffsetWatermarks()
        let (dispatcher, partitions) = Self.dispatcher(pipeline, watermarks: watermarks)
        store.hold(1)
        for partition in Int32(0)..<4 { dispatcher.dispatch(Self.records(partition: partition, count: 40)) }
        try await Self.waitUntil { store.isHeld(1) }
        let shutdown = Task { await dispatcher.drainAll(deadline: .now + .seconds(10)) }
        try await Task.sleep(for: .milliseconds(200))
        store.release(1)
        await shutdown.value
        for partition in partitions { #expect(watermarks.position(of: partition) == Offset(40), "\(partition)") }
        #expect(calls.all.values.allSatisfy { $0 == 1 })
        try await Self.expectExact(store, partitions: 0..<4, count: 40)
        #expect(store.base.processedEvents.count == 160)
    }
}
