import Foundation
import Logging
import Sluice
import SluiceTesting
import Synchronization
import Testing

/// Group commit in the pipeline: consecutive records of a lane share one store transaction, a
/// savepoint per handler (or per group), and a failure costs only its own record.
@Suite("Group commit: one transaction per group of records, a savepoint per handler or per group")
struct GroupCommitTests {
    static let schema = #"""
        {"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","required":["seq"],
         "properties":{"seq":{"type":"integer"}}}
        """#

    /// Counts the transactions that committed.
    final class CountingStore: DedupeStore {
        let base = InMemoryDedupeStore()
        let commits = Atomic<Int>(0)
        /// While set, every transaction fails as a database that is down does.
        let unavailable = Atomic<Bool>(false)
        let refused = Atomic<Int>(0)

        func withTransaction<T: Sendable>(_ body: (InMemoryDedupeStore.Transaction) async throws -> T) async throws -> T {
            if unavailable.load(ordering: .relaxed) {
                refused.add(1, ordering: .relaxed)
                throw SluiceError(code: .storeUnavailable, message: "the database is unreachable (injected)", isRetriable: true)
            }
            let result = try await base.withTransaction(body)
            commits.add(1, ordering: .relaxed)
            return result
        }

        func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
            try await base.storedOffsets(group: group, partitions: partitions)
        }

        func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
            try await base.pruneProcessedEvents(olderThan: cutoff)
        }
    }

    struct Item: Decodable, Sendable { var seq: Int }

    /// Handler calls by sequence number.
    final class Calls: Sendable {
        let counts = Mutex<[Int: Int]>([:])
        func record(_ seq: Int) -> Int { counts.withLock { $0[seq, default: 0] += 1; return $0[seq]! } }
        func count(_ seq: Int) -> Int { counts.withLock { $0[seq] ?? 0 } }
    }

    static func records(_ range: Range<Int>, id: (Int) -> String = { "e\($0)" }) -> [Record] {
        range.map { seq in
            let value = #"{"event_id":"\#(id(seq))","event_type":"orders.item_counted","schema_version":1,"occurred_at":"2026-11-22T10:00:00Z","producer":"tests","correlation_id":"c\#(seq)","causation_id":"cause-\#(seq)","subject":"item:\#(seq)","data":{"seq":\#(seq)}}"#
            return Record(topic: "t", partition: 0, offset: Offset(Int64(seq)), value: Array(value.utf8))
        }
    }

    static func pipeline(
        store: CountingStore, sink: any DeadLetterSink, maxRecords: Int = 100,
        configure: (inout EventPipeline<CountingStore>.Configuration) -> Void = { _ in },
        handler: @escaping @Sendable (Int, HandlerContext<InMemoryDedupeStore.Transaction>) async throws -> Void
    ) throws -> EventPipeline<CountingStore> {
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_counted", version: 1, schemaText: schema)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_counted", as: Item.self, handler: "count") { event, context in
            try await handler(event.payload.seq, context)
        }
        var configuration = EventPipeline<CountingStore>.Configuration(group: "g")
        configuration.retry.initialDelay = .milliseconds(1)
        configuration.groupCommit.maxRecords = maxRecords
        configure(&configuration)
        return EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: router, store: store,
            deadLetterSink: sink, logger: Logger(label: "group-commit") { _ in SwiftLogNoOpLogHandler() })
    }

    @Test("Ten records, the fifth failing once: the four before it commit together, it is retried alone, the five after commit together; its failed attempt leaves no trace (with group savepoints the four run again)",
          arguments: [EventPipeline<CountingStore>.GroupCommit.SavepointScope.handler, .group])
    func failingHandlerInsideGroup(savepoints: EventPipeline<CountingStore>.GroupCommit.SavepointScope) async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, sink: sink, configure: { $0.groupCommit.savepoints = savepoints }) { seq, context in
            let attempt = calls.record(seq)
            context.transaction.setValue(.string("\(attempt)"), forKey: "seq-\(seq)")
            if seq == 4 && attempt == 1 {
                context.transaction.setValue(.bool(true), forKey: "failed-attempt-write")
                throw SluiceError(code: "FLAKY", message: "first attempt fails", isRetriable: true)
            }
        }
        let outcomes = await pipeline.process(Self.records(0..<10))
        #expect(outcomes == Array(repeating: RecordOutcome.handled, count: 10))
        #expect(store.commits.load(ordering: .relaxed) == 3, "group [0-3], record 4 alone, group [5-9]")
        switch savepoints {
        case .handler:
            #expect((0..<10).map(calls.count) == [1, 1, 1, 1, 2, 1, 1, 1, 1, 1])
        case .group:
            // One savepoint per group: the failure rolled the group back, and the four records
            // before it ran again (their first run left nothing: each committed value is the
            // second call's).
            #expect((0..<10).map(calls.count) == [2, 2, 2, 2, 2, 1, 1, 1, 1, 1])
            #expect((0..<4).map { store.base.committedValue(forKey: "seq-\($0)") } == Array(repeating: .string("2"), count: 4))
        }
        #expect(store.base.committedValue(forKey: "failed-attempt-write") == nil)
        #expect(store.base.committedValue(forKey: "seq-4") == .string("2"))
        #expect(store.base.processedEvents.count == 10)
        #expect(try await store.base.storedOffsets(group: "g", partitions: [TopicPartition(topic: "t", partition: 0)]).values.first == Offset(10))
        #expect(sink.codes.isEmpty)
    }

    @Test("A non-retriable failure inside a group goes to the dead-letter topic after one call; the records around it are handled")
    func nonRetriableInsideGroup() async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, sink: sink) { seq, context in
            _ = calls.record(seq)
            if seq == 2 { throw SluiceError(code: "ORDER_UNKNOWN", message: "no such order", isRetriable: false) }
            context.transaction.setValue(.bool(true), forKey: "seq-\(seq)")
        }
        let outcomes = await pipeline.process(Self.records(0..<6))
        #expect(outcomes == [.handled, .handled, .deadLettered("ORDER_UNKNOWN"), .handled, .handled, .handled])
        #expect(calls.count(2) == 1)
        #expect(sink.codes == ["ORDER_UNKNOWN"])
        #expect(store.base.committedValue(forKey: "seq-2") == nil)
        #expect(store.base.processedEvents.count == 5)
    }

    @Test("The same event_id twice in one group is a duplicate the second time; with another payload it is EVENT_ID_PAYLOAD_MISMATCH")
    func duplicatesAndMismatchInsideGroup() async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, sink: sink) { seq, _ in _ = calls.record(seq) }
        var records = Self.records(0..<4, id: { $0 == 3 ? "e0" : "e\($0)" })  // e0 again, other payload
        records.insert(Self.records(0..<1)[0], at: 2)  // e0 again, same payload
        for index in records.indices { records[index].offset = Offset(Int64(index)) }
        let outcomes = await pipeline.process(records)
        #expect(outcomes == [.handled, .handled, .duplicate, .handled, .deadLettered(.eventIDPayloadMismatch)])
        #expect(calls.count(0) == 1)
        #expect(sink.codes == ["EVENT_ID_PAYLOAD_MISMATCH"])
    }

    @Test("A group whose commit fails is redone without losing or repeating an effect")
    func failedGroupCommit() async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        store.base.failNextCommits(with: [SluiceError(code: .storeConflict, message: "injected", isRetriable: true)])
        let pipeline = try Self.pipeline(store: store, sink: sink) { seq, context in
            let previous = context.transaction.value(forKey: "total")
            var total = seq
            if case .string(let text) = previous { total += Int(text) ?? 0 }
            context.transaction.setValue(.string("\(total)"), forKey: "total")
        }
        let outcomes = await pipeline.process(Self.records(0..<20))
        #expect(outcomes == Array(repeating: RecordOutcome.handled, count: 20))
        #expect(store.base.committedValue(forKey: "total") == .string("\((0..<20).reduce(0, +))"))
        #expect(store.base.processedEvents.count == 20)
    }

    @Test("Another consumer records an event of the group while it runs (two consumers of a partition in a rebalance): nothing of the group stays, its records are redone, that event is a duplicate")
    func eventRecordedConcurrentlyDuringGroup() async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, sink: sink) { seq, context in
            let attempt = calls.record(seq)
            context.transaction.setValue(.string("\(attempt)"), forKey: "seq-\(seq)")
            if seq == 3 && attempt == 1 {
                // The other consumer's transaction handles e3 and commits first.
                let hash = PayloadHash.of(context.record.value ?? [])
                _ = try await store.base.withTransaction { other in
                    try await other.markProcessed(group: "g", handler: "count", eventID: "e3", payloadHash: hash, at: Date())
                }
            }
        }
        let outcomes = await pipeline.process(Self.records(0..<10))
        #expect(outcomes == (0..<10).map { $0 == 3 ? RecordOutcome.duplicate : .handled })
        // The group ran every record, then could not record e3: it rolled back as a whole, and
        // each record ran again on its own, except e3, now found processed.
        #expect((0..<10).map(calls.count) == (0..<10).map { $0 == 3 ? 1 : 2 })
        #expect(store.base.committedValue(forKey: "seq-3") == nil, "the group's write for e3 was rolled back")
        #expect(store.base.committedValue(forKey: "seq-4") == .string("2"))
        #expect(store.base.processedEvents.count == 10)
        #expect(store.base.processedEvents.allSatisfy { $0.processCount == 1 })
        #expect(try await store.base.storedOffsets(group: "g", partitions: [TopicPartition(topic: "t", partition: 0)]).values.first == Offset(10))
        #expect(sink.codes.isEmpty)
    }

    @Test("Reprocessing a group in which an event comes twice runs its handler twice and counts both")
    func reprocessTwiceInsideGroup() async throws {
        let store = CountingStore()
        let calls = Calls()
        let pipeline = try Self.pipeline(store: store, sink: RecordingDeadLetterSink(), configure: { $0.dedupe = .reprocess }) { seq, _ in
            _ = calls.record(seq)
        }
        var records = Self.records(0..<3)
        records.append(Self.records(1..<2)[0])  // e1 again, same payload
        for index in records.indices { records[index].offset = Offset(Int64(index)) }
        #expect(await pipeline.process(records) == [.handled, .handled, .handled, .handled])
        #expect(calls.count(1) == 2)
        let counts = Dictionary(uniqueKeysWithValues: store.base.processedEvents.map { ($0.eventID, $0.processCount) })
        #expect(counts == ["e0": 1, "e1": 2, "e2": 1])
        #expect(store.commits.load(ordering: .relaxed) == 1)
    }

    @Test("Two handlers per event, the second failing once on the third record: the first handler's write for it commits with the group, once; the second is retried alone; every effect once",
          arguments: [EventPipeline<CountingStore>.GroupCommit.SavepointScope.handler, .group])
    func secondHandlerFailsInsideGroup(savepoints: EventPipeline<CountingStore>.GroupCommit.SavepointScope) async throws {
        let store = CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Calls()
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_counted", version: 1, schemaText: Self.schema)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_counted", as: Item.self, handler: "first") { event, context in
            let previous = context.transaction.value(forKey: "first-total")
            var total = 1
            if case .string(let text) = previous { total += Int(text) ?? 0 }
            context.transaction.setValue(.string("\(total)"), forKey: "first-total")
        }
        router.on("orders.item_counted", as: Item.self, handler: "second") { event, context in
            let seq = event.payload.seq
            let attempt = calls.record(seq)
            context.transaction.setValue(.string("\(attempt)"), forKey: "second-\(seq)")
            if seq == 2 && attempt == 1 { throw SluiceError(code: "FLAKY", message: "first attempt fails", isRetriable: true) }
        }
        var configuration = EventPipeline<CountingStore>.Configuration(group: "g")
        configuration.retry.initialDelay = .milliseconds(1)
        configuration.groupCommit.savepoints = savepoints
        let pipeline = EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: router, store: store,
            deadLetterSink: sink, logger: Logger(label: "group-commit") { _ in SwiftLogNoOpLogHandler() })
        let outcomes = await pipeline.process(Self.records(0..<6))
        #expect(outcomes == Array(repeating: RecordOutcome.handled, count: 6))
        // Each record's first handler counted once in what committed.
        #expect(store.base.committedValue(forKey: "first-total") == .string("6"))
        #expect(store.base.committedValue(forKey: "second-2") == .string("2"))
        #expect(calls.count(2) == 2)
        // With group savepoints the records before the failing one ran again.
        let before = savepoints == .handler ? 1 : 2
        #expect([0, 1, 3, 4, 5].map(calls.count) == [before, before, 1, 1, 1])
        #expect(store.base.processedEvents.count == 12)
        #expect(store.base.processedEvents.allSatisfy { $0.processCount == 1 })
        #expect(sink.codes.isEmpty)
    }

    @Test("Groups are bounded by their record count")
    func boundedGroups() async throws {
        let store = CountingStore()
        let pipeline = try Self.pipeline(store: store, sink: RecordingDeadLetterSink(), maxRecords: 100) { _, _ in }
        let outcomes = await pipeline.process(Self.records(0..<250))
        #expect(outcomes.allSatisfy { $0 == .handled })
        #expect(store.commits.load(ordering: .relaxed) == 3)
        let single = CountingStore()
        let unbatched = try Self.pipeline(store: single, sink: RecordingDeadLetterSink(), maxRecords: 1) { _, _ in }
        _ = await unbatched.process(Self.records(0..<25))
        #expect(single.commits.load(ordering: .relaxed) == 25, "maxRecords 1 commits each record alone")
    }
}
