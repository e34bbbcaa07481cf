import Synchronization

/// Store-wide group commit: the ready groups of many lanes share one store transaction.
///
/// Each lane submits one group at a time (consecutive records of its partition) and waits. While
/// no transaction runs, the first submission starts a runner; the runner takes every group that is
/// waiting (up to ``GroupCommit/maxTransactionRecords`` records), runs them one after another in
/// one store transaction, commits once, and tells each lane its group's result; then it takes
/// what arrived meanwhile. So 48 lanes do not queue for a single-writer store one transaction at
/// a time, and a commit's cost (an fsync on SQLite) is shared by every partition in it.
///
/// The lanes' order is untouched: a lane has at most one group in the queue, and a group's
/// records run in offset order. What one group's handler does inside its savepoint cannot undo
/// another group's records; a failed commit fails every group in it, and each lane then redoes
/// its records on its own.
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
    }

    struct Submission: Sendable {
        var records: Int
        var body: Body
        var continuation: CheckedContinuation<Outcome, Never>
    }

    private let state = Mutex(GroupCommitQueueState<Submission>())
    private let maxTransactionRecords: Int
    private let transact: @Sendable ([Submission]) async -> Void

    /// - Parameters:
    ///   - maxTransactionRecords: Records of all groups in one transaction at most (a group is
    ///     never split: one larger group still runs, alone).
    ///   - withTransaction: The store's `withTransaction`.
    init<Store: DedupeStore>(store: Store, maxTransactionRecords: Int) where Store.Transaction == Transaction {
        self.maxTransactionRecords = max(1, maxTransactionRecords)
        self.transact = { submissions in
            let outputs = OutputsBox<Output>(count: submissions.count)
            do {
                try await store.withTransaction { transaction in
                    let began = ContinuousClock.now
                    for (index, submission) in submissions.enumerated() {
                        outputs.set(index, try await submission.body(transaction, began))
                    }
                }
                for (index, submission) in submissions.enumerated() {
                    // Every body ran and returned, so each has its output.
                    guard let output = outputs.get(index) else { continue }
                    submission.continuation.resume(returning: .committed(output))
                }
            } catch {
                for (index, submission) in submissions.enumerated() {
                    submission.continuation.resume(returning: .failed(error, output: outputs.get(index)))
                }
            }
        }
    }

    /// Runs `body` in the next shared transaction and returns what became of it.
    ///
    /// Cancelling the waiting task does not cancel the transaction: a group that was handed to
    /// the store finishes, and its outcome (committed or not) is reported, so a revoked lane
    /// never lets go of records whose effects may still commit.
    func submit(records: Int, _ body: @escaping Body) async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let action = state.withLock {
                $0.submit(Submission(records: records, body: body, continuation: continuation), records: records)
            }
            if case .startRunner = action {
                Task { await self.run() }
            }
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
    private var waiting: [(work: Work, records: Int)] = []
    private var head = 0
    /// Whether a runner is taking work; at most one is.
    private(set) var isRunning = false

    /// Groups waiting for a transaction.
    var waitingCount: Int { waiting.count - head }

    enum SubmitAction: Equatable {
        /// Start a runner: none is running.
        case startRunner
        /// The running runner will take it.
        case none
    }

    mutating func submit(_ work: Work, records: Int) -> SubmitAction {
        waiting.append((work, records))
        if isRunning { return .none }
        isRunning = true
        return .startRunner
    }

    enum NextAction {
        /// Run these groups in one transaction, then ask again.
        case transact([Work])
        /// Nothing waits: the runner ends (the next submission starts another).
        case stop
    }

    /// The runner's next step: the waiting groups, oldest first, while their records fit in
    /// `maxRecords` (the first always fits).
    mutating func next(maxRecords: Int) -> NextAction {
        guard head < waiting.count else {
            waiting.removeAll(keepingCapacity: true)
            head = 0
            isRunning = false
            return .stop
        }
        var taken: [Work] = []
        var total = 0
        while head < waiting.count, taken.isEmpty || total + waiting[head].records <= maxRecords {
            total += waiting[head].records
            taken.append(waiting[head].work)
            head += 1
        }
        if head == waiting.count {
            waiting.removeAll(keepingCapacity: true)
            head = 0
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
