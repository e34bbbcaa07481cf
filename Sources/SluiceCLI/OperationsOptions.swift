import ArgumentParser
import Sluice
import SluiceHTTP

/// The flags `run` and `replay` share for operating the process: the log format and the
/// operations endpoint's address.
struct OperationsOptions: ParsableArguments {
    @Option(name: .customLong("log-format"), help: "text (default) or json: one JSON object per line, metadata as fields.")
    var logFormat: String = "text"

    @Option(
        name: .customLong("http-address"),
        help: "HOST:PORT for the operations endpoint (/health/live, /health/ready, /metrics, /partitions); off by default.")
    var httpAddress: String?

    func validate() throws {
        try LogFormat.validate(logFormat)
        if let httpAddress {
            do { _ = try HTTPAddress(parsing: httpAddress) } catch { throw ValidationError(error.description) }
        }
    }

    /// The log format asked for (validated).
    var format: LogFormat { LogFormat(rawValue: logFormat) ?? .text }

    /// The endpoint's address, when one was asked for.
    func address() throws -> HTTPAddress? { try httpAddress.map { try HTTPAddress(parsing: $0) } }
}
