/// How a schema change affects the consumers of an event type.
public enum CompatibilityVerdict: String, Sendable, Hashable, Comparable, CustomStringConvertible {
    /// Additive: every event valid at the old version is still valid, and nothing a consumer
    /// read has gone.
    case pass = "PASS"
    /// Compatible for validation, but risky: consumers may meet a value they do not handle
    /// (an enum value added) or miss one they relied on (a required field made optional).
    /// Reported; does not fail the gate.
    case warning = "WARNING"
    /// Old events or old consumers break: fails `sluice schemas check`.
    case breaking = "BREAKING"

    private var rank: Int {
        switch self {
        case .pass: 0
        case .warning: 1
        case .breaking: 2
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rank < rhs.rank }

    public var description: String { rawValue }
}
