/// A position in a partition's log.
///
/// A concrete offset is ≥ 0. Kafka also uses a few negative values as logical positions
/// (``beginning``, ``end``, ``stored``); those are only meaningful as a place to start reading.
public struct Offset: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible,
    ExpressibleByIntegerLiteral
{
    /// The offset as Kafka numbers it (negative values are librdkafka's logical offsets).
    public var rawValue: Int64

    public init(rawValue: Int64) { self.rawValue = rawValue }
    /// The offset `value`.
    public init(_ value: Int64) { self.rawValue = value }
    public init(integerLiteral value: Int64) { self.rawValue = value }

    /// The oldest offset still in the log (librdkafka's `RD_KAFKA_OFFSET_BEGINNING`).
    public static let beginning = Offset(-2)
    /// The offset the next produced record will get (librdkafka's `RD_KAFKA_OFFSET_END`).
    public static let end = Offset(-1)
    /// The group's committed offset (librdkafka's `RD_KAFKA_OFFSET_STORED`).
    public static let stored = Offset(-1000)
    /// No offset (librdkafka's `RD_KAFKA_OFFSET_INVALID`), e.g. a partition with no commit yet.
    public static let invalid = Offset(-1001)

    /// Whether this is a real position in the log rather than a logical one.
    public var isConcrete: Bool { rawValue >= 0 }

    /// The offset right after this one: what gets committed once this record has an outcome.
    public var next: Offset { Offset(rawValue + 1) }

    public static func < (lhs: Offset, rhs: Offset) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .beginning: "beginning"
        case .end: "end"
        case .stored: "stored"
        case .invalid: "invalid"
        default: String(rawValue)
        }
    }
}
