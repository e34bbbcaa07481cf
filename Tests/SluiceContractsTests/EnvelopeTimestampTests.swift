import Foundation
import SluiceContracts
import SluiceTestFixtures
import Testing

@Suite("Envelope RFC 3339 timestamps")
struct EnvelopeTimestampTests {
    @Test(
        "valid date-times parse to the right instant",
        arguments: [
            ("1970-01-01T00:00:00Z", 0, 0),
            ("2025-01-31T12:00:00Z", 1_738_324_800, 0),
            ("2025-01-31t12:00:00z", 1_738_324_800, 0),
            ("2025-01-31T14:00:00+02:00", 1_738_324_800, 0),
            ("2025-01-31T06:30:00-05:30", 1_738_324_800, 0),
            ("2025-01-31T12:00:00.5Z", 1_738_324_800, 500_000_000),
            ("2025-01-31T12:00:00.123456789123Z", 1_738_324_800, 123_456_789),
            ("2024-02-29T00:00:00Z", 1_709_164_800, 0),
            ("2000-02-29T00:00:00Z", 951_782_400, 0),
            ("1969-12-31T23:59:59Z", -1, 0),
            ("2016-12-31T23:59:60Z", 1_483_228_800, 0),
        ] as [(String, Int64, Int32)])
    func valid(_ text: String, _ seconds: Int64, _ nanoseconds: Int32) throws {
        let timestamp = try #require(RFC3339Timestamp(text))
        #expect(timestamp.text == text)
        #expect(timestamp.secondsSinceEpoch == seconds)
        #expect(timestamp.nanoseconds == nanoseconds)
    }

    @Test(
        "anything else is refused",
        arguments: [
            "", "2025-01-31", "2025-01-31T12:00Z", "2025-01-31T12:00:00", "2025-01-31 12:00:00Z",
            "2025-13-01T00:00:00Z", "2025-00-01T00:00:00Z", "2025-02-29T00:00:00Z", "1900-02-29T00:00:00Z",
            "2025-04-31T00:00:00Z", "2025-01-31T24:00:00Z", "2025-01-31T12:60:00Z", "2025-01-31T12:00:61Z",
            "2025-01-31T12:00:00.Z", "2025-01-31T12:00:00+0200", "2025-01-31T12:00:00+24:00",
            "2025-01-31T12:00:00+02:60", "2025-01-31T12:00:00Z ", " 2025-01-31T12:00:00Z",
            "+2025-01-31T12:00:00Z", "2025-1-31T12:00:00Z", "２０２５-01-31T12:00:00Z", "2025-01-31T12:00:00ZZ",
        ])
    func invalid(_ text: String) {
        #expect(RFC3339Timestamp(text) == nil, "\(text)")
    }

    @Test("timestamps compare by instant, whatever the offset")
    func comparison() throws {
        let utc = try #require(RFC3339Timestamp("2025-01-31T12:00:00Z"))
        let shifted = try #require(RFC3339Timestamp("2025-01-31T13:00:00+01:00"))
        let later = try #require(RFC3339Timestamp("2025-01-31T12:00:00.001Z"))
        #expect(utc == shifted)
        #expect(utc < later)
        #expect(shifted.utcOffsetSeconds == 3600)
        #expect(later.millisecondsSinceEpoch == 1_738_324_800_001)
        #expect(utc.date == Date(timeIntervalSince1970: 1_738_324_800))
    }
}
