import DequeModule
import Synchronization

/// The ordered worker of one partition: it processes the partition's records one at a time, in
/// offset order, and moves the partition's watermark past each record once it has a durable
/// outcome.
///
/// The lane's queue is bounded by the dispatcher, which pauses the partition when it is full.
final class PartitionLane: Sendable {
    /// Gives consecutive records of the partition their outcomes, one per record, in order,
    /// reporting each as soon as it is durable.
    typealias Processor = @Sendable ([Record], @escaping @Sendable (Int, RecordOutcome) -> Void) async -> [RecordOutcome]

    private struct State {
        /// Waiting records, oldest first. A deque, so a taken record is released at once (a
        /// head index into an array kept up to a thousand handled records alive per lane).
        var queue: Deque<Record> = []
        var waiter: CheckedContinuation<[Record]?, Never>?
        var stopping = false
        var inFlight: [Record] = []
        /// Offset of the last record enqueued, to drop records delivered twice (after a seek).
        var lastEnqueued: Offset?
        var paused = false
        var counts: [RecordOutcome: Int] = [:]
        /// A stop was asked for: a halt (a retry's backoff, a dead-letter topic that refuses
        /// writes) ends at once instead of waiting for the stop's deadline.
        var stopRequested = false
        /// The halted section running now (see ``PartitionLane/halted(_:)``), to cancel on stop.
        var halt: (id: UInt64, task: Task<Void, Never>, grace: Duration)?
        var nextHaltID: UInt64 = 0
        /// The lane's task has ended (after an abandoned record, or when asked to stop).
        var finished = false

        var depth: Int { queue.count }

        /// Removes up to `count` records from the front of the queue and marks them in flight.
        mutating func take(_ count: Int) -> [Record] {
            let taken = min(queue.count, count)
            let records = Array(queue.prefix(taken))
            queue.removeFirst(taken)
            inFlight = records
            return records
        }
    }

    let partition: TopicPartition
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let watermarks: OffsetWatermarks
    private let onDrained: @Sendable (TopicPartition) -> Void
    private let resumeBelow: Int
    private let maxBatch: Int

    /// - Parameters:
    ///   - resumeBelow: When the lane's partition is paused and fewer records than this wait,
    ///     `onDrained` is called (once per pause).
    ///   - maxBatch: Records handed to the processor at once at most (what is queued, up to this).
    init(
        partition: TopicPartition,
        watermarks: OffsetWatermarks,
        resumeBelow: Int,
        maxBatch: Int,
        processor: @escaping Processor,
        onDrained: @escaping @Sendable (TopicPartition) -> Void
    ) {
        self.partition = partition
        self.watermarks = watermarks
        self.resumeBelow = resumeBelow
        self.onDrained = onDrained
        self.maxBatch = max(1, maxBatch)
        let loop = Task { [self] in
            defer { state.withLock { $0.finished = true } }
            while let batch = await next() {
                let outcomes = await Self.$current.withValue(self) {
                    await processor(batch) { index, outcome in
                        // Durable outcomes arrive in order: the watermark follows them as they come.
                        guard outcome.isDurable else { return }
                        watermarks.advance(batch[index].topicPartition, to: batch[index].offset.next)
                    }
                }
                precondition(outcomes.count == batch.count, "a lane's processor gives one outcome per record")
                let abandoned = state.withLock { state in
                    state.inFlight = []
                    for outcome in outcomes { state.counts[outcome, default: 0] += 1 }
                    return outcomes.contains(.abandoned)
                }
                // Outcomes are in offset order, and everything after an abandoned record is
                // abandoned too: the watermark moves to the last durable one.
                if let index = outcomes.lastIndex(where: \.isDurable) {
                    let last = batch[index]
                    watermarks.advance(last.topicPartition, to: last.offset.next)
                }
                if abandoned { break }
                checkDrained()
            }
        }
        task.withLock { $0 = loop }
    }

    /// The next records to process: what is queued, up to ``maxBatch``; waits when nothing is.
    private func next() async -> [Record]? {
        await withCheckedContinuation { (continuation: CheckedContinuation<[Record]?, Never>) in
            enum Step { case end, records([Record]), wait }
            let maxBatch = self.maxBatch
            let step: Step = state.withLock { state in
                if state.stopping { return .end }
                if state.depth > 0 {
                    let records = state.take(maxBatch)
                    return .records(records)
                }
                state.waiter = continuation
                return .wait
            }
            switch step {
            case .end: continuation.resume(returning: nil)
            case .records(let records): continuation.resume(returning: records)
            case .wait: break
            }
        }
    }

    /// Adds records of this partition (in offset order) and returns the queue depth.
    @discardableResult
    func enqueue(_ records: [Record]) -> Int {
        let maxBatch = self.maxBatch
        let (waiter, taken, depth): (CheckedContinuation<[Record]?, Never>?, [Record], Int) = state.withLock { state in
            guard !state.stopping else { return (nil, [], state.depth) }
            for record in records {
                if let last = state.lastEnqueued, record.offset <= last { continue }
                state.queue.append(record)
                state.lastEnqueued = record.offset
            }
            guard let waiter = state.waiter, state.depth > 0 else { return (nil, [], state.depth) }
            state.waiter = nil
            let taken = state.take(maxBatch)
            return (waiter, taken, state.depth)
        }
        waiter?.resume(returning: taken)
        return depth
    }

    /// Records waiting, not counting the one in flight.
    var depth: Int { state.withLock { $0.depth } }

    /// What the lane holds right now, read under the lane's lock it already takes per batch.
    var status: PartitionDispatcher.LaneStatus {
        state.withLock { state in
            PartitionDispatcher.LaneStatus(
                queued: state.depth,
                inFlight: state.inFlight.first.map { first in first.offset...(state.inFlight.last?.offset ?? first.offset) },
                isPaused: state.paused)
        }
    }

    /// Whether the dispatcher paused this lane's partition.
    var isPaused: Bool {
        get { state.withLock { $0.paused } }
        set { state.withLock { $0.paused = newValue } }
    }

    /// How many records reached each outcome.
    var outcomeCounts: [RecordOutcome: Int] { state.withLock { $0.counts } }

    private func checkDrained() {
        let drained = state.withLock { state in
            guard state.paused, state.depth < resumeBelow else { return false }
            state.paused = false
            return true
        }
        if drained { onDrained(partition) }
    }

    /// Takes no record any more: the queued ones are dropped (they have no outcome and are
    /// delivered again from the commit); the one in flight goes on. Synchronous, so a revocation
    /// drops what is queued at the moment it is decided, not when its task gets to run.
    func stopTaking() {
        let waiter = state.withLock { state in
            state.stopping = true
            state.queue.removeAll()
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    // MARK: Halts

    /// The lane whose processor runs in this task, for ``halted(_:)``.
    @TaskLocal static var current: PartitionLane?

    /// Runs `body`, a wait that holds the partition (a retry's backoff, a write to the dead-letter
    /// topic), so that stopping the lane ends it instead of waiting for the stop's deadline.
    ///
    /// A partition that is halted makes no progress, so neither a graceful shutdown's drain nor a
    /// revocation has anything to wait for: when the lane is asked to stop, `body` is cancelled
    /// after `grace` (and refused when the stop came first), its record gets no outcome and is
    /// delivered again from the last commit. A grace lets what is usually quick (a dead-letter
    /// write the broker acknowledges in milliseconds) finish in a drain, while one that hangs
    /// (the broker retrying a refused write until its delivery timeout) does not hold it. Outside
    /// a lane (a replay's own loop, a test calling the pipeline) it simply runs `body`.
    ///
    /// - Throws: `CancellationError` when the lane's stop (or the task's cancellation) ended the
    ///   halt, whatever `body` threw then; otherwise what `body` threw.
    static func halted(grace: Duration = .zero, _ body: @escaping @Sendable () async throws -> Void) async throws {
        guard let lane = current else { return try await body() }
        try await lane.runHalted(grace: grace, body)
    }

    private func runHalted(grace: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        let failure = Mutex<(any Error)?>(nil)
        let task = Task {
            do { try await body() } catch { failure.withLock { $0 = error } }
        }
        let id: UInt64? = state.withLock { state in
            guard !state.stopRequested else { return nil }
            state.nextHaltID &+= 1
            state.halt = (state.nextHaltID, task, grace)
            return state.nextHaltID
        }
        if id == nil { task.cancel() }
        await withTaskCancellationHandler {
            await task.value
        } onCancel: {
            task.cancel()
        }
        state.withLock { state in
            if let halt = state.halt, halt.id == id { state.halt = nil }
        }
        if id == nil || task.isCancelled { throw CancellationError() }
        if let error = failure.withLock({ $0 }) { throw error }
    }

    /// Stops the lane: queued records are dropped (they have no outcome and are delivered again
    /// from the commit), the record in flight is finished, and the lane's task ends.
    ///
    /// A halted lane (see ``halted(_:)``) stops at once: its halted record is abandoned, and in
    /// a drain so is everything queued behind it, which could not be handled before it anyway.
    ///
    /// - Parameters:
    ///   - drainFirst: Process what is queued before stopping (graceful shutdown).
    ///   - deadline: When the in-flight record is still not done by then it is cancelled: its
    ///     backoff ends and it is abandoned without an outcome.
    func stop(drainFirst: Bool, deadline: ContinuousClock.Instant) async {
        let halt = state.withLock { state in
            state.stopRequested = true
            return state.halt
        }
        if let halt {
            if halt.grace <= .zero {
                halt.task.cancel()
            } else {
                // The section ends by itself within its grace, or is cancelled then.
                let task = halt.task
                Task {
                    try? await Task.sleep(for: halt.grace)
                    task.cancel()
                }
            }
        }
        if drainFirst {
            while depth > 0, !state.withLock({ $0.finished }), ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        stopTaking()
        guard let loop = task.withLock({ $0 }) else { return }
        // At the deadline the lane's task is cancelled: a backoff ends, a wait for a shared
        // transaction or the store's writer stops. A store call that cannot be interrupted (a
        // statement blocked on a lock another process holds, a connection that does not answer)
        // is given a second more; then the lane is let go without waiting for it. Its record has
        // no outcome, so nothing is committed for it; whatever its transaction commits later is
        // in the store, ahead of Kafka, where the next owner resumes from.
        // Whichever comes first, the task's end or the grace after the deadline, ends the wait.
        let waiter = Mutex<(continuation: CheckedContinuation<Void, Never>?, done: Bool)>((nil, false))
        let resume: @Sendable () -> Void = {
            waiter.withLock { state -> CheckedContinuation<Void, Never>? in
                state.done = true
                return state.continuation.take()
            }?.resume()
        }
        let watchdog = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            loop.cancel()
            try? await Task.sleep(for: Self.letGoAfterCancel)
            resume()
        }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let done = waiter.withLock { state in
                if !state.done { state.continuation = continuation }
                return state.done
            }
            if done { continuation.resume() }
            Task {
                await loop.value
                resume()
            }
        }
        watchdog.cancel()
    }

    /// How long a stopped lane's task may take to end once cancelled at its deadline.
    static let letGoAfterCancel = Duration.seconds(1)
}
