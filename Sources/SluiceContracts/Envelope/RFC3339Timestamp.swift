import Foundation

/// An RFC 3339 timestamp as the producer wrote it, together with the instant it names.
///
/// The envelope keeps the original ``text`` (so a record can be re-emitted byte for byte and
/// logged as the producer wrote it) and the parsed instant (so code can compare and sort).
///
/// Parsing is strict and hand-written, because it runs once per record on the decode path
/// and `DateFormatter`/`ISO8601DateFormatter` cost microseconds per call. Accepted grammar is
/// RFC 3339 section 5.6 `date-time`:
///
/// ```
/// YYYY-MM-DD ("T" / "t") hh:mm:ss [ "." 1*DIGIT ] ( "Z" / "z" / ("+" / "-") hh:mm )
/// ```
///
/// - The separator is `T` or `t` (the space that RFC 3339's note allows is refused: it is not
///   `date-time`, and JSON Schema's `format: date-time` refuses it too).
/// - The day must exist in its month (leap years included); hours 00–23, minutes 00–59,
///   seconds 00–60. A leap second (`:60`) is accepted and counts as the first second of the
///   next minute, since the instant cannot be represented otherwise.
/// - Fractional seconds may have any number of digits; digits past the ninth are truncated.
/// - The offset's hours are 00–23 and its minutes 00–59.
public struct RFC3339Timestamp: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// The timestamp exactly as written.
    public let text: String
    /// Whole seconds since 1970-01-01T00:00:00Z.
    public let secondsSinceEpoch: Int64
    /// The fraction of the second, in nanoseconds (0–999,999,999).
    public let nanoseconds: Int32
    /// The offset from UTC the producer wrote, in seconds (`Z` is 0).
    public let utcOffsetSeconds: Int32

    /// Parses `text` strictly; returns `nil` when it is not an RFC 3339 `date-time`.
    public init?(_ text: String) {
        var text = text
        let parsed = text.withUTF8 { Self.parse($0) }
        guard let parsed else { return nil }
        self.text = text
        self.secondsSinceEpoch = parsed.seconds
        self.nanoseconds = parsed.nanoseconds
        self.utcOffsetSeconds = parsed.offset
    }

    /// The instant as a Foundation `Date` (sub-microsecond precision may round).
    public var date: Date {
        Date(timeIntervalSince1970: Double(secondsSinceEpoch) + Double(nanoseconds) / 1_000_000_000)
    }

    /// Milliseconds since the Unix epoch, the unit Kafka timestamps use.
    public var millisecondsSinceEpoch: Int64 {
        secondsSinceEpoch * 1000 + Int64(nanoseconds / 1_000_000)
    }

    public var description: String { text }

    /// Two timestamps are equal when they name the same instant, whatever offset they were
    /// written in (`…T12:00:00Z` equals `…T14:00:00+02:00`).
    public static func == (lhs: Self, rhs: Self) -> Bool {
        lhs.secondsSinceEpoch == rhs.secondsSinceEpoch && lhs.nanoseconds == rhs.nanoseconds
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(secondsSinceEpoch)
        hasher.combine(nanoseconds)
    }

    public static func < (lhs: Self, rhs: Self) -> Bool {
        (lhs.secondsSinceEpoch, lhs.nanoseconds) < (rhs.secondsSinceEpoch, rhs.nanoseconds)
    }

    private struct Parsed {
        var seconds: Int64
        var nanoseconds: Int32
        var offset: Int32
    }

    private static func parse(_ bytes: UnsafeBufferPointer<UInt8>) -> Parsed? {
        // Shortest form: "YYYY-MM-DDThh:mm:ssZ" (20 bytes).
        guard bytes.count >= 20 else { return nil }

        func digits(_ start: Int, _ count: Int) -> Int? {
            var value = 0
            for index in start..<(start + count) {
                let digit = Int(bytes[index]) &- 0x30
                guard digit >= 0, digit <= 9 else { return nil }
                value = value * 10 + digit
            }
            return value
        }

        guard let year = digits(0, 4), bytes[4] == UInt8(ascii: "-"),
            let month = digits(5, 2), bytes[7] == UInt8(ascii: "-"),
            let day = digits(8, 2),
            bytes[10] == UInt8(ascii: "T") || bytes[10] == UInt8(ascii: "t"),
            let hour = digits(11, 2), bytes[13] == UInt8(ascii: ":"),
            let minute = digits(14, 2), bytes[16] == UInt8(ascii: ":"),
            let second = digits(17, 2)
        else { return nil }

        guard (1...12).contains(month), day >= 1, day <= daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }

        var index = 19
        var nanoseconds = 0
        if bytes[index] == UInt8(ascii: ".") {
            index += 1
            let fractionStart = index
            var scale = 100_000_000
            while index < bytes.count {
                let digit = Int(bytes[index]) &- 0x30
                guard digit >= 0, digit <= 9 else { break }
                nanoseconds += digit * scale
                scale /= 10
                index += 1
            }
            guard index > fractionStart else { return nil }
        }

        guard index < bytes.count else { return nil }
        var offset = 0
        switch bytes[index] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            index += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            let sign = bytes[index] == UInt8(ascii: "-") ? -1 : 1
            guard bytes.count - index == 6, bytes[index + 3] == UInt8(ascii: ":"),
                let offsetHours = digits(index + 1, 2), let offsetMinutes = digits(index + 4, 2),
                offsetHours <= 23, offsetMinutes <= 59
            else { return nil }
            offset = sign * (offsetHours * 3600 + offsetMinutes * 60)
            index += 6
        default:
            return nil
        }
        guard index == bytes.count else { return nil }

        let days = daysFromCivil(year: year, month: month, day: day)
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offset)
        return Parsed(seconds: seconds, nanoseconds: Int32(nanoseconds), offset: Int32(offset))
    }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2:
            let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
            return leap ? 29 : 28
        case 4, 6, 9, 11:
            return 30
        default:
            return 31
        }
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
    private static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }
}

extension RFC3339Timestamp: Codable {
    /// Decodes from a JSON string holding an RFC 3339 `date-time`.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let timestamp = RFC3339Timestamp(text) else {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: "\"\(text)\" is not an RFC 3339 date-time")
        }
        self = timestamp
    }

    /// Encodes as the original text.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(text)
    }
}
