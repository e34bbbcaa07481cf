import Dispatch
import GRDB
import Synchronization

/// One exclusive use of the SQLite writer connection that spans `await`s.
///
/// GRDB hands out its writer connection only inside a synchronous closure. A handler is async, so
/// the session parks a thread of its own (a GCD thread, never the cooperative pool) inside that
/// closure and runs the jobs async code sends it, one at a time, until ``finish()``. Every
/// statement of a transaction therefore runs on the connection that began it.
final class SQLiteWriterSession: Sendable {
    typealias Job = @Sendable (Database) -> Void

    private struct State {
        var jobs: [Job] = []
        var finished = false
    }

    private let state = Mutex(State())
    private let signal = DispatchSemaphore(value: 0)

    /// Runs `body` on the writer connection and returns its result.
    func perform<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            let job: Job = { database in
                continuation.resume(with: Result { try body(database) })
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
        }
    }

    /// Ends the session: the parked thread returns the connection to GRDB.
    func finish() {
        state.withLock { $0.finished = true }
        signal.signal()
    }

    /// The parked thread's loop: runs jobs until the session is finished and drained.
    func serve(_ database: Database) {
        while true {
            signal.wait()
            let (job, done): (Job?, Bool) = state.withLock { state in
                if !state.jobs.isEmpty { return (state.jobs.removeFirst(), false) }
                return (nil, state.finished)
            }
            if let job { job(database) }
            if done { return }
        }
    }
}

/// An async FIFO lock: one writer session at a time per store, so that no thread blocks waiting
/// for GRDB's writer while another session holds it.
final class SQLiteWriterLease: Sendable {
    private struct State {
        var held = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private let state = Mutex(State())

    func acquire() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let granted = state.withLock { state in
                if state.held {
                    state.waiters.append(continuation)
                    return false
                }
                state.held = true
                return true
            }
            if granted { continuation.resume() }
        }
    }

    func release() {
        let next = state.withLock { state -> CheckedContinuation<Void, Never>? in
            if state.waiters.isEmpty {
                state.held = false
                return nil
            }
            return state.waiters.removeFirst()
        }
        next?.resume()
    }
}
