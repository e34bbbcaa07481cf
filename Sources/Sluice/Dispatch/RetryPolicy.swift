/// How a failing handler is retried in place: exponential backoff with jitter, bounded by a
/// number of attempts and by a total time.
///
/// A lane that backs off holds only its own partition: the other lanes keep going.
public struct RetryPolicy: Sendable, Hashable {
    /// Attempts in all, the first one included. Default: 5.
    public var maxAttempts: Int = 5
    /// The delay before the second attempt. Default: 100 ms.
    public var initialDelay: Duration = .milliseconds(100)
    /// Each further delay is the previous one times this. Default: 2.
    public var multiplier: Double = 2
    /// No single delay is longer than this. Default: 10 s.
    public var maxDelay: Duration = .seconds(10)
    /// No attempt starts later than this after the first one. Default: 60 s.
    public var maxTotalDuration: Duration = .seconds(60)
    /// The fraction of each delay that is random (0 = none, 1 = "full jitter"). Default: 0.5.
    public var jitter: Double = 0.5

    /// The defaults described on each property.
    public init() {}

    /// No retries: the first failure is final.
    public static let none: RetryPolicy = {
        var policy = RetryPolicy()
        policy.maxAttempts = 1
        return policy
    }()

    /// The delay before attempt `attempt + 1`, or `nil` when attempt `attempt` was the last one.
    ///
    /// - Parameters:
    ///   - attempt: The attempt that just failed, from 1.
    ///   - elapsed: Time since the first attempt started.
    ///   - random: A number in `0..<1` (injected so tests are deterministic).
    public func delay(afterAttempt attempt: Int, elapsed: Duration, random: Double) -> Duration? {
        guard attempt < maxAttempts else { return nil }
        let base = min(Self.seconds(initialDelay) * pow(multiplier, Double(attempt - 1)), Self.seconds(maxDelay))
        let jittered = base * (1 - jitter) + base * jitter * random
        let delay = Duration.milliseconds(Int64((jittered * 1_000).rounded()))
        guard elapsed + delay <= maxTotalDuration else { return nil }
        return delay
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func pow(_ base: Double, _ exponent: Double) -> Double {
        var result = 1.0
        var remaining = Int(exponent)
        while remaining > 0 {
            result *= base
            remaining -= 1
        }
        return result
    }
}
