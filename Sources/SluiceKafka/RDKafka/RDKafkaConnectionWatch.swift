import Dispatch
import Logging
import Synchronization

/// Notices a client and a broker that do not understand each other, and says so once, plainly.
///
/// Pointed at a port that is not a Kafka listener, or at a TLS listener with
/// `security.protocol=PLAINTEXT` (or the reverse), librdkafka fails the connection handshake
/// (`ApiVersionRequest failed: … Read underflow`, `Disconnected while requesting ApiVersion`,
/// `Invalid response size`, `SSL handshake failed`) and reports it as a warning, again every 30 s
/// or so, forever. Those lines name the symptom, not the cause. Once such failures have gone on
/// for the connection timeout (`socket.connection.setup.timeout.ms`, librdkafka's default 30 s),
/// with at least two failed attempts, the watch logs one error saying what to check.
final class RDKafkaConnectionWatch: Sendable {
    private struct State {
        var first: ContinuousClock.Instant?
        var failures = 0
        var last = ""
        var reported = false
    }

    private let state = Mutex(State())
    private let timeoutMilliseconds: Int
    private let servers: String
    private let securityProtocol: String
    private let logger: Logger

    /// A watch for a client created with `properties`, logging to `logger`.
    init(properties: [String: String], logger: Logger) {
        let milliseconds = properties["socket.connection.setup.timeout.ms"].flatMap(Int64.init) ?? 30_000
        timeoutMilliseconds = Int(max(1, milliseconds))
        servers = properties["bootstrap.servers"] ?? properties["metadata.broker.list"] ?? "?"
        securityProtocol = properties["security.protocol"] ?? "plaintext, the default"
        self.logger = logger
    }

    /// Whether librdkafka's `text` (a log line or an error's reason) reports a handshake the two
    /// sides did not understand.
    static func isMismatch(_ text: String) -> Bool {
        text.contains("ApiVersion") || text.contains("Read underflow") || text.contains("Invalid response size")
            || text.contains("SSL handshake failed") || text.contains("Protocol parse failure")
    }

    /// Takes note of a librdkafka log line or error reason.
    func note(_ text: String) {
        guard Self.isMismatch(text) else { return }
        let now = ContinuousClock.now
        let (armTimer, report) = state.withLock { state -> (Bool, Bool) in
            guard !state.reported else { return (false, false) }
            state.failures += 1
            state.last = text
            guard let first = state.first else {
                state.first = now
                return (true, false)
            }
            return (false, now - first >= .milliseconds(timeoutMilliseconds) && state.failures >= 2)
        }
        if report { self.report() }
        if armTimer {
            // librdkafka may not retry for a while: look again when the timeout has passed.
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(timeoutMilliseconds)) { [weak self] in
                guard let self, self.state.withLock({ !$0.reported && $0.failures >= 2 }) else { return }
                self.report()
            }
        }
    }

    private func report() {
        let last: String? = state.withLock { state in
            guard !state.reported else { return nil }
            state.reported = true
            return state.last
        }
        guard let last else { return }
        logger.error(
            """
            the Kafka client and the broker at \(servers) do not understand each other: every connection failed in the \
            protocol handshake for \(Double(timeoutMilliseconds) / 1_000) s (librdkafka: \(last)). Check that \(servers) is a Kafka listener's address \
            and port (not another service's, not the broker's TLS or SASL listener), that security.protocol \
            (\(securityProtocol)) is the one that listener expects, and that the broker speaks a Kafka protocol \
            librdkafka \(RDKafkaClient.libraryVersion) supports (Kafka 0.10 or newer).
            """,
            metadata: ["kafka.bootstrap.servers": "\(servers)", "kafka.security.protocol": "\(securityProtocol)"])
    }
}
