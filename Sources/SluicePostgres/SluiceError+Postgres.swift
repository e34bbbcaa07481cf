import PostgresNIO
import Sluice

extension SluiceError {
    /// The ``SluiceError`` for an error PostgresNIO (or its pool) threw while the store was at
    /// `step`: SQLSTATEs of serialization failures, deadlocks and unique violations become
    /// retriable conflicts, other server errors failed statements, anything else an unavailable
    /// store.
    ///
    /// Messages carry the server's message and SQLSTATE and never the connection's password:
    /// PostgresNIO's own descriptions are not used, since they can quote the query and its binds.
    static func postgres(_ error: any Error, step: String) -> SluiceError {
        if let error = error as? SluiceError { return error }
        if let error = error as? PostgresDedupeStore.LeaseTimedOut {
            return SluiceError(
                code: .storeUnavailable, message: "\(step) failed: no database connection within \(error.timeout)", isRetriable: true)
        }
        if let error = error as? PSQLError {
            if error.code == .server, let info = error.serverInfo {
                let sqlState = info[.sqlState] ?? "?????"
                var message = "\(step) failed: \(info[.message] ?? "server error") (SQLSTATE \(sqlState))"
                if let detail = info[.detail] { message += ": \(detail)" }
                switch sqlState {
                case "40001", "40P01", "23505":
                    return SluiceError(code: .storeConflict, message: message, isRetriable: true)
                case _ where sqlState.hasPrefix("08") || sqlState.hasPrefix("57P") || sqlState.hasPrefix("53"):
                    // Connection exceptions, shutdowns and exhausted resources: the server, not the statement.
                    return SluiceError(code: .storeUnavailable, message: message, isRetriable: true)
                default:
                    return SluiceError(code: .storeStatementFailed, message: message, isRetriable: false)
                }
            }
            return SluiceError(
                code: .storeUnavailable, message: "\(step) failed: the database is unreachable (\(error.code))", isRetriable: true)
        }
        if let error = error as? PostgresDecodingError {
            return SluiceError(
                code: .storeStatementFailed,
                message: "\(step) failed: cannot read column '\(error.columnName)' of type \(error.postgresType)",
                isRetriable: false)
        }
        if error is CancellationError {
            return SluiceError(code: .storeUnavailable, message: "\(step) was cancelled", isRetriable: true)
        }
        if String(describing: type(of: error)) == "ConnectionPoolError" {
            // The pool's own failures (its module is not imported here): its shutdown (the store
            // was closed), a cancelled lease (the caller was cancelled), its circuit breaker
            // (connecting has failed for a minute). Their reflection names the reason.
            let base = String(reflecting: error)
            let reason: String
            if base.contains("poolShutdown") {
                reason = "the store is closed"
            } else if base.contains("requestCancelled") {
                reason = "the wait for a connection was cancelled"
            } else if base.contains("CircuitBreaker") {
                reason = "the database is unreachable (connecting has failed for a minute; the pool keeps trying)"
            } else {
                reason = "the database is unreachable (\(type(of: error)))"
            }
            return SluiceError(code: .storeUnavailable, message: "\(step) failed: \(reason)", isRetriable: true)
        }
        return SluiceError(
            code: .storeUnavailable, message: "\(step) failed: the database is unreachable (\(type(of: error)))", isRetriable: true)
    }
}
