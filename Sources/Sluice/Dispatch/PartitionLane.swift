import Synchronization

/// The ordered worker of one partition: it processes the partition's records one at a time, in
/// offset order, and moves the partition's watermark past each record once it has a durable
/// outcome.
///
/// The lane's queue is bounded by the dispatcher, which pauses the partition when it is full.
final class PartitionLane: Sendable {
    typealias Processor = @Sendable (Record) async -> RecordOutcome

    private struct State {
        var queue: [Record] = []
        var head = 0
        var waiter: CheckedContinuation<Record?, Never>?
        var stopping = false
        var inFlight: Record?
        /// Offset of the last record enqueued, to drop records delivered twice (after a seek).
        var lastEnqueued: Offset?
        var paused = false
        var counts: [RecordOutcome: Int] = [:]

        var depth: Int { queue.count - head }
    }

    let partition: TopicPartition
    private let state = Mutex(State())
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let watermarks: OffsetWatermarks
    private let onDrained: @Sendable (TopicPartition) -> Void
    private let resumeBelow: Int

    /// - Parameters:
    ///   - resumeBelow: When the lane's partition is paused and fewer records than this wait,
    ///     `onDrained` is called (once per pause).
    init(
        partition: TopicPartition,
        watermarks: OffsetWatermarks,
        resumeBelow: Int,
        processor: @escaping Processor,
        onDrained: @escaping @Sendable (TopicPartition) -> Void
    ) {
        self.partition = partition
        self.watermarks = watermarks
        self.resumeBelow = resumeBelow
        self.onDrained = onDrained
        let loop = Task { [self] in
            while let record = await next() {
                let outcome = await processor(record)
                state.withLock { state in
                    state.inFlight = nil
                    state.counts[outcome, default: 0] += 1
                }
                guard outcome.isDurable else { break }
                watermarks.advance(record.topicPartition, to: record.offset.next)
                checkDrained()
            }
        }
        task.withLock { $0 = loop }
    }

    private func next() async -> Record? {
        await withCheckedContinuation { (continuation: CheckedContinuation<Record?, Never>) in
            enum Step { case end, record(Record), wait }
            let step: Step = state.withLock { state in
                if state.stopping { return .end }
                if state.depth > 0 {
                    let record = state.queue[state.head]
                    state.head += 1
                    if state.head > 1_024 && state.head * 2 > state.queue.count {
                        state.queue.removeFirst(state.head)
                        state.head = 0
                    }
                    state.inFlight = record
                    return .record(record)
                }
                state.waiter = continuation
                return .wait
            }
            switch step {
            case .end: continuation.resume(returning: nil)
            case .record(let record): continuation.resume(returning: record)
            case .wait: break
            }
        }
    }

    /// Adds records of this partition (in offset order) and returns the queue depth.
    @discardableResult
    func enqueue(_ records: [Record]) -> Int {
        let (waiter, record, depth): (CheckedContinuation<Record?, Never>?, Record?, Int) = state.withLock { state in
            guard !state.stopping else { return (nil, nil, state.depth) }
            for record in records {
                if let last = state.lastEnqueued, record.offset <= last { continue }
                state.queue.append(record)
                state.lastEnqueued = record.offset
            }
            guard let waiter = state.waiter, state.depth > 0 else { return (nil, nil, state.depth) }
            state.waiter = nil
            let record = state.queue[state.head]
            state.head += 1
            state.inFlight = record
            return (waiter, record, state.depth)
        }
        waiter?.resume(returning: record)
        return depth
    }

    /// Records waiting, not counting the one in flight.
    var depth: Int { state.withLock { $0.depth } }

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

    /// Stops the lane: queued records are dropped (they have no outcome and are delivered again
    /// from the commit), the record in flight is finished, and the lane's task ends.
    ///
    /// - Parameters:
    ///   - drainFirst: Process what is queued before stopping (graceful shutdown).
    ///   - deadline: When the in-flight record is still not done by then it is cancelled: its
    ///     backoff ends and it is abandoned without an outcome.
    func stop(drainFirst: Bool, deadline: ContinuousClock.Instant) async {
        if drainFirst {
            while depth > 0, ContinuousClock.now < deadline {
                try? await Task.sleep(for: .milliseconds(5))
            }
        }
        let waiter = state.withLock { state in
            state.stopping = true
            state.queue.removeAll()
            state.head = 0
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
        guard let loop = task.withLock({ $0 }) else { return }
        let watchdog = Task {
            try? await Task.sleep(until: deadline, clock: .continuous)
            loop.cancel()
        }
        await loop.value
        watchdog.cancel()
    }
}
