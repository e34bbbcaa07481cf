import Dispatch
import Foundation
import GRDB
import Synchronization

/// One exclusive use of the SQLite writer connection that spans `await`s.
///
/// GRDB hands out its writer connection only inside a synchronous closure, on GRDB's own queue.
/// The session parks that thread (a GCD thread, never the cooperative pool) inside the closure
/// and serves two kinds of work until ``finish()``:
/// - statements sent by ``perform(_:)`` from elsewhere, one at a time;
/// - the transaction body itself: the session is a `TaskExecutor`, and the store runs the body
///   with it as the task's executor preference. The body (the handlers included) then runs on
///   the writer thread, and its statements run in place, without a thread hop each, which is
///   what makes a group of records cheap.
final class SQLiteWriterSession: TaskExecutor, @unchecked Sendable {
    // @unchecked: `state` is behind a Mutex; `servingThread` is written once, before any job is
    // accepted (under the same Mutex), and only compared afterwards.
    typealias Job = @Sendable (Database) -> Void

    private struct State {
        var jobs: [Job] = []
        var finished = false
        /// The serving loop has returned: nothing will run here any more.
        var exited = false
        var servingThread: pthread_t?
    }

    private let state = Mutex(State())
    private let signal = DispatchSemaphore(value: 0)
    /// The connection, valid only on the serving thread while it serves.
    private nonisolated(unsafe) var database: Database?

    /// Runs `body` on the writer connection and returns its result: in place when called on the
    /// writer thread, otherwise by handing it over.
    func perform<T>(_ body: @escaping (Database) throws -> T) async throws -> T {
        if let database = onServingThread() {
            return try body(database)
        }
        return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<UncheckedBox<T>, any Error>) in
            let work = UncheckedBox(body)
            let job: Job = { database in
                continuation.resume(with: Result { UncheckedBox(try work.value(database)) })
            }
            let accepted = state.withLock { state in
                guard !state.finished else { return false }
                state.jobs.append(job)
                return true
            }
            if accepted {
                signal.signal()
            } else {
                continuation.resume(throwing: SQLiteDedupeStore.unavailable("the transaction is already finished"))
            }
        }.value
    }

    private func onServingThread() -> Database? {
        guard let database else { return nil }
        let serving = state.withLock { $0.servingThread }
        guard let serving, pthread_equal(serving, pthread_self()) != 0 else { return nil }
        return database
    }

    // MARK: TaskExecutor

    func enqueue(_ job: consuming ExecutorJob) {
        let unowned = UnownedJob(job)
        let executor = asUnownedTaskExecutor()
        let accepted = state.withLock { state in
            // A job may arrive after the transaction ended: an unstructured task a handler
            // started inherits this executor preference. The loop is gone then, so the job runs
            // on the global executor instead of waiting forever.
            guard !state.exited else { return false }
            state.jobs.append { _ in unowned.runSynchronously(on: executor) }
            return true
        }
        if accepted {
            signal.signal()
        } else {
            let global = globalConcurrentExecutor.asUnownedTaskExecutor()
            DispatchQueue.global().async { unowned.runSynchronously(on: global) }
        }
    }

    // MARK: Serving

    /// Ends the session: the parked thread returns the connection to GRDB once its queue is empty.
    func finish() {
        state.withLock { $0.finished = true }
        signal.signal()
    }

    /// The parked thread's loop: runs jobs until the session is finished and drained.
    func serve(_ database: Database) {
        self.database = database
        state.withLock { $0.servingThread = pthread_self() }
        defer {
            state.withLock { $0.servingThread = nil }
            self.database = nil
        }
        while true {
            signal.wait()
            while true {
                let (job, done): (Job?, Bool) = state.withLock { state in
                    if !state.jobs.isEmpty { return (state.jobs.removeFirst(), false) }
                    if state.finished { state.exited = true }
                    return (nil, state.finished)
                }
                guard let job else {
                    if done { return }
                    break
                }
                job(database)
            }
        }
    }
}

/// Carries a result across the continuation; it is handed from the writer thread to the
/// waiting task once, never shared.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

/// An async FIFO lock: one writer session at a time per store, so that no thread blocks waiting
/// for GRDB's writer while another session holds it.
final class SQLiteWriterLease: Sendable {
    private struct State {
        var held = false
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Void, any Error>)] = []
        var nextID: UInt64 = 0
    }

    private let state = Mutex(State())

    /// Waits for the writer; a task cancelled while it waits stops waiting (`CancellationError`),
    /// so a lane stopped during a store outage does not queue behind every other lane's attempt.
    func acquire() async throws {
        let id = state.withLock { state in
            state.nextID &+= 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Step { case granted, wait, cancelled }
                let step: Step = state.withLock { state in
                    if Task.isCancelled { return .cancelled }
                    if state.held {
                        state.waiters.append((id, continuation))
                        return .wait
                    }
                    state.held = true
                    return .granted
                }
                switch step {
                case .granted: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                case .wait: break
                }
            }
        } onCancel: {
            let waiter = state.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard let index = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
                return state.waiters.remove(at: index).continuation
            }
            waiter?.resume(throwing: CancellationError())
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, any Error>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst().continuation
        }
        next?.resume()
    }
}
