import Foundation
import Logging
import Sluice
import SluiceTesting
import Synchronization
import Testing

/// A partition halted (its dead-letter topic refusing writes, or a handler backing off) makes no
/// progress, so a graceful shutdown or a revocation must not sit out its deadline waiting for it:
/// the halted record is abandoned at once, nothing past it is committed, and it is delivered again.
@Suite("Halted lanes stop at once: shutdown and revocation while a partition is halted")
struct HaltedLaneTests {
    typealias Group = GroupCommitTests

    /// Refuses the first write at once, then holds every later one as a broker that does not
    /// answer would (until cancelled, or for a minute), and fails it.
    final class RefusingSink: DeadLetterSink {
        let attempts = Atomic<Int>(0)
        func send(_ record: DeadLetterRecord) async throws {
            let attempt = attempts.add(1, ordering: .relaxed).newValue
            if attempt > 1 { try await Task.sleep(for: .seconds(60)) }
            throw SluiceError(code: "NOT_ENOUGH_REPLICAS", message: "the broker refuses the write", isRetriable: true)
        }
    }

    static let p0 = TopicPartition(topic: "t", partition: 0)
    static let p1 = TopicPartition(topic: "t", partition: 1)

    /// 20 records on partition 0 (the sixth one, seq 5, poison when `poison` is set) and 20 on partition 1.
    static func records(poison: Bool) -> [Record] {
        let first = Group.records(0..<20).map { record in
            guard poison, record.offset == Offset(5) else { return record }
            return Record(topic: "t", partition: 0, offset: record.offset, value: Array("not json".utf8))
        }
        let second = Group.records(20..<40).map {
            Record(topic: "t", partition: 1, offset: Offset($0.offset.rawValue - 20), value: $0.value)
        }
        return first + second
    }

    static func dispatcher<Store: DedupeStore>(_ pipeline: EventPipeline<Store>, watermarks: OffsetWatermarks) -> PartitionDispatcher {
        let dispatcher = PartitionDispatcher(
            watermarks: watermarks, flowControl: RecordingFlowControl(), logger: Logger(label: "t") { _ in SwiftLogNoOpLogHandler() },
            batchProcessor: { records, report in await pipeline.process(records, reporting: report) })
        dispatcher.assign([p0, p1])
        return dispatcher
    }

    static func waitUntil(_ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw SluiceError(code: "TIMEOUT", message: "condition not met") }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test("Shutdown while the dead-letter topic refuses a poison record's letter (a write in flight): the drain ends at once, not at its 30 s deadline; the watermark stays at the poison record")
    func shutdownWhileDeadLetterHalted() async throws {
        let store = Group.CountingStore()
        let sink = RefusingSink()
        let calls = Group.Calls()
        let pipeline = try Group.pipeline(store: store, sink: sink) { seq, _ in _ = calls.record(seq) }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        dispatcher.dispatch(Self.records(poison: true))
        try await Self.waitUntil { watermarks.position(of: Self.p1) == Offset(20) && sink.attempts.load(ordering: .relaxed) >= 2 }

        let started = ContinuousClock.now
        await dispatcher.drainAll(deadline: .now + .seconds(30))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(5), "the drain waited \(took) for a halted partition")
        #expect(watermarks.position(of: Self.p0) == Offset(5), "nothing past the poison record")
        #expect((0..<5).allSatisfy { calls.count($0) == 1 })
        #expect((6..<20).allSatisfy { calls.count($0) == 0 }, "nothing behind the halted record ran")
        #expect((20..<40).allSatisfy { calls.count($0) == 1 })
    }

    @Test("Shutdown while a handler backs off (20 s before its next attempt): the drain ends at once; the record and those behind it are left for redelivery")
    func shutdownWhileHandlerBacksOff() async throws {
        let store = Group.CountingStore()
        let calls = Group.Calls()
        let pipeline = try Group.pipeline(store: store, sink: RecordingDeadLetterSink(), configure: {
            $0.retry.initialDelay = .seconds(20)
            $0.retry.jitter = 0
        }) { seq, _ in
            _ = calls.record(seq)
            if seq == 5 { throw SluiceError(code: "DOWNSTREAM_UNAVAILABLE", message: "try later", isRetriable: true) }
        }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        dispatcher.dispatch(Self.records(poison: false))
        try await Self.waitUntil { watermarks.position(of: Self.p1) == Offset(20) && calls.count(5) == 1 }
        try await Task.sleep(for: .milliseconds(50))

        let started = ContinuousClock.now
        await dispatcher.drainAll(deadline: .now + .seconds(30))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(5), "the drain waited \(took) for a backoff")
        #expect(watermarks.position(of: Self.p0) == Offset(5))
        #expect(calls.count(5) == 1, "no second attempt")
        #expect((6..<20).allSatisfy { calls.count($0) == 0 })
        #expect(store.base.processedEvents.count == 25)
    }

    @Test("A handler that fails after the shutdown began does not start a backoff: the drain ends when the attempt does")
    func failureAfterShutdownBegan() async throws {
        let store = Group.CountingStore()
        let calls = Group.Calls()
        let gate = Mutex(false)
        let pipeline = try Group.pipeline(store: store, sink: RecordingDeadLetterSink(), configure: {
            $0.retry.initialDelay = .seconds(20)
            $0.retry.jitter = 0
        }) { seq, _ in
            _ = calls.record(seq)
            guard seq == 5 else { return }
            while !gate.withLock({ $0 }) { try await Task.sleep(for: .milliseconds(5)) }
            throw SluiceError(code: "DOWNSTREAM_UNAVAILABLE", message: "try later", isRetriable: true)
        }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        dispatcher.dispatch(Self.records(poison: false))
        try await Self.waitUntil { calls.count(5) == 1 }

        let started = ContinuousClock.now
        let shutdown = Task { await dispatcher.drainAll(deadline: .now + .seconds(30)) }
        try await Task.sleep(for: .milliseconds(200))
        gate.withLock { $0 = true }
        await shutdown.value
        let took = ContinuousClock.now - started
        #expect(took < .seconds(5), "the drain waited \(took) for a backoff that began after it")
        #expect(watermarks.position(of: Self.p0) == Offset(5))
        #expect(calls.count(5) == 1)
    }

    /// Holds each write for `delay` (a broker slow to acknowledge, or one retrying a refused write
    /// until its delivery timeout), then accepts it.
    final class SlowSink: DeadLetterSink {
        let delay: Duration
        let written = Atomic<Int>(0)
        init(delay: Duration) { self.delay = delay }
        func send(_ record: DeadLetterRecord) async throws {
            try await Task.sleep(for: delay)
            written.add(1, ordering: .relaxed)
        }
    }

    @Test("A first dead-letter write that hangs (60 s) when the shutdown comes is given a second, then abandoned; one the broker acknowledges within that second completes the drain")
    func firstWriteGrace() async throws {
        for (delay, acknowledged) in [(Duration.seconds(60), false), (.milliseconds(300), true)] {
            let store = Group.CountingStore()
            let sink = SlowSink(delay: delay)
            let calls = Group.Calls()
            let pipeline = try Group.pipeline(store: store, sink: sink) { seq, _ in _ = calls.record(seq) }
            let watermarks = OffsetWatermarks()
            let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
            dispatcher.dispatch(Self.records(poison: true))
            try await Self.waitUntil { calls.count(4) == 1 && watermarks.position(of: Self.p0) == Offset(5) }

            let started = ContinuousClock.now
            await dispatcher.drainAll(deadline: .now + .seconds(30))
            let took = ContinuousClock.now - started
            #expect(took < .seconds(5), "the drain waited \(took) for a write of \(delay)")
            if acknowledged {
                #expect(sink.written.load(ordering: .relaxed) == 1)
                #expect(watermarks.position(of: Self.p0) == Offset(20), "the letter was written; the drain went on to the end")
            } else {
                #expect(sink.written.load(ordering: .relaxed) == 0)
                #expect(watermarks.position(of: Self.p0) == Offset(5), "nothing past the record whose letter was not written")
            }
        }
    }

    @Test("A store outage halts the partition without spending the handler's retries: 3 s of STORE_UNAVAILABLE with a policy of 2 attempts, then every record handled once, none dead-lettered")
    func storeOutageHaltsWithoutSpendingRetries() async throws {
        let store = Group.CountingStore()
        let sink = RecordingDeadLetterSink()
        let calls = Group.Calls()
        let pipeline = try Group.pipeline(store: store, sink: sink, configure: {
            $0.retry.maxAttempts = 2
            $0.retry.maxTotalDuration = .milliseconds(500)
        }) { seq, _ in _ = calls.record(seq) }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        store.unavailable.store(true, ordering: .relaxed)
        dispatcher.dispatch(Self.records(poison: false))
        try await Task.sleep(for: .seconds(3))
        #expect(store.refused.load(ordering: .relaxed) > 4, "the lanes kept trying")
        #expect(watermarks.position(of: Self.p0) == nil && watermarks.position(of: Self.p1) == nil, "nothing is durable during the outage")
        store.unavailable.store(false, ordering: .relaxed)
        try await Self.waitUntil { watermarks.position(of: Self.p0) == Offset(20) && watermarks.position(of: Self.p1) == Offset(20) }
        #expect(sink.codes.isEmpty, "nothing was dead-lettered")
        #expect(store.base.processedEvents.count == 40)
        await dispatcher.drainAll(deadline: .now + .seconds(5))
    }

    @Test("Shutdown during a store outage ends at once: the waiting records are left for redelivery")
    func shutdownDuringStoreOutage() async throws {
        let store = Group.CountingStore()
        let calls = Group.Calls()
        let pipeline = try Group.pipeline(store: store, sink: RecordingDeadLetterSink()) { seq, _ in _ = calls.record(seq) }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        store.unavailable.store(true, ordering: .relaxed)
        dispatcher.dispatch(Self.records(poison: false))
        try await Self.waitUntil { store.refused.load(ordering: .relaxed) > 4 }
        let started = ContinuousClock.now
        await dispatcher.drainAll(deadline: .now + .seconds(30))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(5), "the drain waited \(took) for the store")
        #expect(watermarks.position(of: Self.p0) == nil && watermarks.position(of: Self.p1) == nil)
        #expect(store.base.processedEvents.isEmpty)
    }

    @Test("Revoking a halted partition returns at once with its position at the poison record; the other partition is untouched")
    func revokeWhileHalted() async throws {
        let store = Group.CountingStore()
        let sink = RefusingSink()
        let calls = Group.Calls()
        let pipeline = try Group.pipeline(store: store, sink: sink) { seq, _ in _ = calls.record(seq) }
        let watermarks = OffsetWatermarks()
        let dispatcher = Self.dispatcher(pipeline, watermarks: watermarks)
        dispatcher.dispatch(Self.records(poison: true))
        try await Self.waitUntil { watermarks.position(of: Self.p1) == Offset(20) && sink.attempts.load(ordering: .relaxed) >= 2 }

        let started = ContinuousClock.now
        let positions = await dispatcher.revoke([Self.p0], deadline: .now + .seconds(30))
        let took = ContinuousClock.now - started
        #expect(took < .seconds(5), "the revocation waited \(took) for a halted partition")
        #expect(positions[Self.p0] == Offset(5))
        #expect(dispatcher.assignedPartitions == [Self.p1])
        await dispatcher.drainAll(deadline: .now + .seconds(5))
    }
}
