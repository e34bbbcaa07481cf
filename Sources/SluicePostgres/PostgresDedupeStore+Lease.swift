import PostgresNIO
import Sluice
import Synchronization

extension PostgresDedupeStore {
    /// Why a lease failed on the store's side.
    struct LeaseTimedOut: Error {
        var timeout: Duration
    }

    /// Leases a connection from the pool for `body`, waiting at most ``leaseTimeout`` for it.
    ///
    /// While its server is down, PostgresNIO's pool keeps lease requests waiting for as long as
    /// it retries connecting (a minute, before its circuit breaker fails them): a call would
    /// hang that long before it could say the store is unavailable. Here the lease is made by a
    /// child task that hands the connection over and holds the lease until `body` is done;
    /// when no connection comes within the timeout the request is cancelled (the pool drops it)
    /// and the call throws ``LeaseTimedOut``. `body` runs in the calling task.
    func withLease<T>(_ body: (PostgresConnection) async throws -> T) async throws -> T {
        let handoff = LeaseHandoff()
        let client = client
        let timeout = leaseTimeout
        return try await withThrowingTaskGroup(of: Void.self, returning: T.self) { group in
            group.addTask {
                do {
                    try await client.withConnection { connection in await handoff.lend(connection) }
                } catch {
                    handoff.fail(error)
                }
            }
            group.addTask {
                // Cancelled once the connection is here (or the lease failed): nothing to do then.
                guard (try? await Task.sleep(for: timeout)) != nil else { return }
                handoff.fail(LeaseTimedOut(timeout: timeout))
            }
            let connection: PostgresConnection
            do {
                connection = try await handoff.connection()
            } catch {
                group.cancelAll()
                throw error
            }
            group.cancelAll()
            defer { handoff.giveBack() }
            return try await body(connection)
        }
    }
}

/// A connection passed from the task that holds its lease to the task that uses it, and back.
final class LeaseHandoff: Sendable {
    private struct State {
        /// The user's answer, when it came before the user asked.
        var outcome: Result<PostgresConnection, any Error>?
        var user: CheckedContinuation<PostgresConnection, any Error>?
        /// Whether the user has its answer (a connection or an error): later ones are ignored.
        var settled = false
        var holder: CheckedContinuation<Void, Never>?
        var returned = false
    }

    private let state = Mutex(State())

    /// The holder's side: hands `connection` over and waits until the user gives it back; returns
    /// at once when the user stopped waiting (timed out, failed).
    func lend(_ connection: PostgresConnection) async {
        guard settle(.success(connection)) else { return }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let returned = state.withLock { state in
                if !state.returned { state.holder = continuation }
                return state.returned
            }
            if returned { continuation.resume() }
        }
    }

    /// The lease failed or timed out: the user gets `error`, unless it has its connection already.
    func fail(_ error: any Error) {
        _ = settle(.failure(error))
    }

    /// The user's side: waits for the connection or the lease's failure.
    func connection() async throws -> PostgresConnection {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<PostgresConnection, any Error>) in
            let outcome = state.withLock { state in
                if state.outcome == nil { state.user = continuation }
                return state.outcome
            }
            if let outcome { continuation.resume(with: outcome) }
        }
    }

    /// The user is done with the connection: the holder releases the lease.
    func giveBack() {
        let holder = state.withLock { state in
            state.returned = true
            defer { state.holder = nil }
            return state.holder
        }
        holder?.resume()
    }

    /// Gives the user `outcome` if it has no answer yet; `false` when it had one.
    private func settle(_ outcome: Result<PostgresConnection, any Error>) -> Bool {
        let (settled, user) = state.withLock { state -> (Bool, CheckedContinuation<PostgresConnection, any Error>?) in
            guard !state.settled else { return (false, nil) }
            state.settled = true
            defer { state.user = nil }
            if state.user == nil { state.outcome = outcome }
            return (true, state.user)
        }
        user?.resume(with: outcome)
        return settled
    }
}
