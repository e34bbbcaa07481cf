import Foundation
import NIOCore
import PostgresNIO
import Sluice

extension PostgresBindings {
    /// Appends `value` the way ``SQLValue`` maps to PostgreSQL: integers as `int8`, reals as
    /// `float8`, blobs as `bytea`, `NULL` untyped, and text untyped in text format so that the
    /// server reads it as whatever the column or operator expects (`text`, but also a
    /// `timestamptz` or `numeric` written as text, as SQLite allows).
    mutating func append(_ value: SQLValue) {
        switch value {
        case .null: appendNull()
        case .integer(let integer): append(integer)
        case .real(let real): append(real)
        case .text(let text): append(UntypedText(text: text))
        case .blob(let bytes): append(ByteBuffer(bytes: bytes))
        }
    }
}

/// Text bound with no declared type, so the server infers the parameter's type from the
/// statement and parses the text as that type.
struct UntypedText: PostgresNonThrowingEncodable {
    var text: String

    static var psqlType: PostgresDataType { .null }
    static var psqlFormat: PostgresFormat { .text }

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        byteBuffer.writeString(text)
    }
}

/// A `timestamptz` rounded to the microsecond (PostgresNIO's `Date` encoding truncates, so a
/// time read back could come out a microsecond early).
struct PostgresTimestamp: PostgresNonThrowingEncodable {
    var date: Date

    static var psqlType: PostgresDataType { .timestamptz }
    static var psqlFormat: PostgresFormat { .binary }

    /// 2000-01-01T00:00:00Z, PostgreSQL's epoch.
    static let epoch = Date(timeIntervalSince1970: 946_684_800)

    func encode<JSONEncoder: PostgresJSONEncoder>(into byteBuffer: inout ByteBuffer, context: PostgresEncodingContext<JSONEncoder>) {
        let microseconds = (date.timeIntervalSince1970 - 946_684_800) * 1_000_000
        byteBuffer.writeInteger(Int64(microseconds.rounded()))
    }
}

extension SQLRow {
    /// The row's values as ``SQLValue``s: `int2`/`int4`/`int8` (and `oid`) as integers,
    /// `float4`/`float8`/`numeric` as reals, `bool` as 0 or 1, `bytea` as a blob, times and dates
    /// as ISO 8601 text in UTC, `NULL` as null, anything else as its text.
    ///
    /// - Throws: ``SluiceError`` with ``SluiceError/Code/storeStatementFailed`` for a value that
    ///   cannot be read.
    init(postgres row: PostgresRow) throws(SluiceError) {
        var columns: [String] = []
        var values: [SQLValue] = []
        columns.reserveCapacity(row.count)
        values.reserveCapacity(row.count)
        for cell in row {
            columns.append(cell.columnName)
            do {
                values.append(try SQLValue(postgres: cell))
            } catch {
                throw SluiceError.postgres(error, step: "reading column '\(cell.columnName)'")
            }
        }
        self.init(columns: columns, values: values)
    }
}

extension SQLValue {
    private static let secondsStyle = Date.ISO8601FormatStyle()
    private static let dateStyle = Date.ISO8601FormatStyle().year().month().day()

    init(postgres cell: PostgresCell) throws {
        guard var buffer = cell.bytes else {
            self = .null
            return
        }
        switch cell.dataType {
        case .int2, .int4, .int8:
            self = .integer(try cell.decode(Int64.self))
        case .oid where cell.format == .binary && buffer.readableBytes == 4:
            self = .integer(Int64(buffer.readInteger(as: UInt32.self) ?? 0))
        case .float4, .float8:
            self = .real(try cell.decode(Double.self))
        case .numeric:
            let decimal = try cell.decode(Decimal.self)
            self = .real(NSDecimalNumber(decimal: decimal).doubleValue)
        case .bool:
            self = .integer(try cell.decode(Bool.self) ? 1 : 0)
        case .bytea:
            self = .blob(buffer.readBytes(length: buffer.readableBytes) ?? [])
        case .timestamptz, .timestamp:
            guard cell.format == .binary, buffer.readableBytes == 8, let microseconds = buffer.readInteger(as: Int64.self) else {
                self = .text(try cell.decode(String.self))
                return
            }
            self = .text(Self.iso8601(microsecondsSincePostgresEpoch: microseconds, utcSuffix: cell.dataType == .timestamptz))
        case .date:
            self = .text(Self.dateStyle.format(try cell.decode(Date.self)))
        default:
            self = .text(try cell.decode(String.self))
        }
    }

    /// `2024-05-06T07:08:09.123Z`: milliseconds, or microseconds when there are any, computed from
    /// the stored integer so that no floating-point rounding shows.
    private static func iso8601(microsecondsSincePostgresEpoch microseconds: Int64, utcSuffix: Bool) -> String {
        if microseconds == .max { return "infinity" }
        if microseconds == .min { return "-infinity" }
        var (seconds, fraction) = microseconds.quotientAndRemainder(dividingBy: 1_000_000)
        if fraction < 0 {
            seconds -= 1
            fraction += 1_000_000
        }
        var text = secondsStyle.format(Date(timeIntervalSince1970: Double(seconds) + 946_684_800))
        if text.hasSuffix("Z") { text.removeLast() }
        let digits = fraction % 1000 == 0 ? String(fraction / 1000) : String(fraction)
        let width = fraction % 1000 == 0 ? 3 : 6
        text += "." + String(repeating: "0", count: width - digits.count) + digits
        return utcSuffix ? text + "Z" : text
    }
}
