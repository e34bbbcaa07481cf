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
///
/// Failures count as one episode while each follows the one before within ``quietGap`` (twice
/// the timeout, at least 60 s: librdkafka retries a failed handshake about every 30 s); after a
/// longer quiet spell the next failure starts a new episode, so two unrelated hiccups a day apart
/// (a broker restarting mid-handshake) are not taken for a client that cannot talk at all.
final class RDKafkaConnectionWatch: Sendable {
    private struct State {
        var first: ContinuousClock.Instant?
        var previous: ContinuousClock.Instant?
        var episode = 0
        var failures = 0
        var last = ""
        var reported = false
    }

    private let state = Mutex(State())
    private let timeoutMilliseconds: Int
    /// The longest gap between two failures of one episode.
    let quietGap: Duration
    private let servers: String
    private let securityProtocol: String
    private let logger: Logger

    /// A watch for a client created with `properties`, logging to `logger`.
    init(properties: [String: String], logger: Logger) {
        let milliseconds = properties["socket.connection.setup.timeout.ms"].flatMap(Int64.init) ?? 30_000
        timeoutMilliseconds = Int(max(1, milliseconds))
        quietGap = .milliseconds(max(2 * timeoutMilliseconds, 60_000))
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
        let (armTimer, report, episode) = state.withLock { state -> (Bool, Bool, Int) in
            guard !state.reported else { return (false, false, state.episode) }
            if let previous = state.previous, now - previous > quietGap {
                // A new episode: the earlier failures were a passing hiccup.
                state.first = nil
                state.failures = 0
            }
            state.previous = now
            state.failures += 1
            state.last = text
            guard let first = state.first else {
                state.first = now
                state.episode += 1
                return (true, false, state.episode)
            }
            return (false, now - first >= .milliseconds(timeoutMilliseconds) && state.failures >= 2, state.episode)
        }
        if report { self.report() }
        if armTimer {
            // librdkafka may not retry for a while: look again when the timeout has passed.
            DispatchQueue.global().asyncAfter(deadline: .now() + .milliseconds(timeoutMilliseconds)) { [weak self] in
                guard let self, self.state.withLock({ !$0.reported && $0.episode == episode && $0.failures >= 2 }) else { return }
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
