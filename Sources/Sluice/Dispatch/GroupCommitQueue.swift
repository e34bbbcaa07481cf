import DequeModule
import Synchronization

/// Store-wide group commit: the ready groups of many lanes share one store transaction.
///
/// Each lane submits one group at a time (consecutive records of its partition) and waits. While
/// fewer runners than the store's `maxConcurrentTransactions` run, a submission starts one; a
/// runner takes every group that is waiting (up to ``GroupCommit/maxTransactionRecords``
/// records), runs them one after another in one store transaction, commits once, and tells each
/// lane its group's result; then it takes what arrived meanwhile. So 48 lanes do not queue for a single-writer store one transaction at
/// a time, and a commit's cost (an fsync on SQLite) is shared by every partition in it.
///
/// The lanes' order is untouched: a lane has at most one group in the queue, and a group's
/// records run in offset order. What one group's handler does inside its savepoint cannot undo
/// another group's records; a failed commit fails every group in it, and each lane then redoes
/// its records on its own. A lane that is cancelled while it waits (a revocation's deadline, a
/// shutdown's) stops waiting at once and gives its records no outcome: a transaction that is
/// stuck (a handler that hangs, a database that does not answer) cannot hold a revocation or a
/// shutdown past its deadline. Whatever that transaction commits later is found by the dedupe
/// store when the records come again.
final class GroupCommitQueue<Transaction, Output: Sendable>: Sendable {
    /// One lane's group: runs its records inside the shared transaction (started at `began`).
    typealias Body = @Sendable (_ transaction: Transaction, _ began: ContinuousClock.Instant) async throws -> Output

    /// What became of a group.
    enum Outcome: Sendable {
        /// The shared transaction committed with this group's output.
        case committed(Output)
        /// Nothing of the transaction committed. `output` is the group's own output when its
        /// body had finished before the transaction failed (the commit itself failed).
        case failed(any Error, output: Output?)
        /// The waiting task was cancelled before the group's outcome was known: its records have
        /// none (they may still commit, or not; a redelivery finds out through the dedupe store).
        case abandoned
    }

    /// The waiting lane: resumed once, by the runner or by the lane's cancellation, whichever
    /// comes first.
    final class Waiter: Sendable {
        private let state = Mutex<(continuation: CheckedContinuation<Outcome, Never>?, cancelled: Bool)>((nil, false))

        /// Keeps `continuation` for ``resume(_:)``; `false` when the lane was cancelled already.
        func install(_ continuation: CheckedContinuation<Outcome, Never>) -> Bool {
            state.withLock { state in
                guard !state.cancelled else { return false }
                state.continuation = continuation
                return true
            }
        }

        /// Resumes the lane with `outcome`, unless it was resumed already.
        func resume(_ outcome: Outcome) {
            let continuation = state.withLock { state in
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(returning: outcome)
        }

        /// The lane's task was cancelled: it stops waiting now, with ``Outcome/abandoned``.
        func cancel() {
            let continuation = state.withLock { state in
                state.cancelled = true
                defer { state.continuation = nil }
                return state.continuation
            }
            continuation?.resume(returning: .abandoned)
        }

        /// Whether the lane stopped waiting: its group need not run.
        var isCancelled: Bool { state.withLock { $0.cancelled } }
    }

    struct Submission: Sendable {
        var records: Int
        var body: Body
        var waiter: Waiter
    }

    private let state: Mutex<GroupCommitQueueState<Submission>>
    private let maxTransactionRecords: Int
    private let transact: @Sendable ([Submission]) async -> Void

    /// - Parameters:
    ///   - store: The store whose transactions the groups share; its `maxConcurrentTransactions`
    ///     bounds the runners.
    ///   - maxTransactionRecords: Records of all groups in one transaction at most (a group is
    ///     never split: one larger group still runs, alone).
    init<Store: DedupeStore>(store: Store, maxTransactionRecords: Int) where Store.Transaction == Transaction {
        self.maxTransactionRecords = max(1, maxTransactionRecords)
        self.state = Mutex(GroupCommitQueueState(maxRunners: store.maxConcurrentTransactions))
        self.transact = { submissions in
            let outputs = OutputsBox<Output>(count: submissions.count)
            do {
                try await store.withTransaction { transaction in
                    let began = ContinuousClock.now
                    for (index, submission) in submissions.enumerated() where !submission.waiter.isCancelled {
                        outputs.set(index, try await submission.body(transaction, began))
                    }
                }
                for (index, submission) in submissions.enumerated() {
                    // Every body that ran returned its output; one that did not run belongs to a
                    // lane that stopped waiting (and was resumed then, so this is a no-op).
                    submission.waiter.resume(outputs.get(index).map(Outcome.committed) ?? .abandoned)
                }
            } catch {
                for (index, submission) in submissions.enumerated() {
                    submission.waiter.resume(.failed(error, output: outputs.get(index)))
                }
            }
        }
    }

    /// Runs `body` in the next shared transaction and returns what became of it.
    ///
    /// Cancelling the waiting task ends the wait at once with ``Outcome/abandoned``; it does not
    /// cancel the transaction, which commits (or not) for its other groups. A group whose lane
    /// stopped waiting before the transaction reached it does not run.
    func submit(records: Int, _ body: @escaping Body) async -> Outcome {
        let waiter = Waiter()
        return await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
                guard waiter.install(continuation) else {
                    continuation.resume(returning: .abandoned)
                    return
                }
                let action = state.withLock {
                    $0.submit(Submission(records: records, body: body, waiter: waiter), records: records)
                }
                if case .startRunner = action {
                    Task { await self.run() }
                }
            }
        } onCancel: {
            waiter.cancel()
        }
    }

    private func run() async {
        while case .transact(let submissions) = state.withLock({ $0.next(maxRecords: maxTransactionRecords) }) {
            await transact(submissions)
        }
    }
}

/// The group-commit queue's bookkeeping, as a value: each event returns what the caller must do
/// after releasing the lock.
struct GroupCommitQueueState<Work> {
    /// Groups waiting, oldest first; a taken group is released at once (under a steady stream
    /// the queue may never be empty, so nothing taken may stay behind in it).
    private var waiting: Deque<(work: Work, records: Int)> = []
    /// Runners taking work (each runs one transaction at a time).
    private(set) var runners = 0
    /// How many runners may run at once.
    let maxRunners: Int

    init(maxRunners: Int = 1) {
        self.maxRunners = max(1, maxRunners)
    }

    /// Groups waiting for a transaction.
    var waitingCount: Int { waiting.count }

    enum SubmitAction: Equatable {
        /// Start a runner: fewer than ``maxRunners`` run.
        case startRunner
        /// A running runner will take it.
        case none
    }

    mutating func submit(_ work: Work, records: Int) -> SubmitAction {
        waiting.append((work, records))
        guard runners < maxRunners else { return .none }
        runners += 1
        return .startRunner
    }

    enum NextAction {
        /// Run these groups in one transaction, then ask again.
        case transact([Work])
        /// Nothing waits: this runner ends (a later submission starts another).
        case stop
    }

    /// The runner's next step: the waiting groups, oldest first, while their records fit in
    /// `maxRecords` (the first always fits).
    mutating func next(maxRecords: Int) -> NextAction {
        guard !waiting.isEmpty else {
            runners -= 1
            return .stop
        }
        var taken: [Work] = []
        var total = 0
        while let first = waiting.first, taken.isEmpty || total + first.records <= maxRecords {
            total += first.records
            taken.append(first.work)
            waiting.removeFirst()
        }
        return .transact(taken)
    }
}

/// Each group's output, written by the transaction body as the group finishes and read after
/// the transaction ended: the body may throw after some groups finished.
private final class OutputsBox<Output: Sendable>: Sendable {
    private let outputs: Mutex<[Output?]>
    init(count: Int) { outputs = Mutex(Array(repeating: nil, count: count)) }
    func set(_ index: Int, _ output: Output) { outputs.withLock { $0[index] = output } }
    func get(_ index: Int) -> Output? { outputs.withLock { $0[index] } }
}
