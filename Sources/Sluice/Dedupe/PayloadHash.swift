import Crypto

/// The fingerprint stored with a processed event, so that a redelivery with the same `event_id`
/// but different bytes is caught (`EVENT_ID_PAYLOAD_MISMATCH`) instead of skipped.
///
/// SHA-256 of the record's value (swift-crypto), as 64 lower-case hex digits. The format is part
/// of every store's rows: databases written by earlier versions keep matching.
public enum PayloadHash {
    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// The lower-case hex SHA-256 of `bytes`.
    public static func of(_ bytes: [UInt8]) -> String {
        let digest = SHA256.hash(data: bytes)
        return String(unsafeUninitializedCapacity: 2 * SHA256.byteCount) { text in
            var index = 0
            for byte in digest {
                text[index] = hexDigits[Int(byte >> 4)]
                text[index + 1] = hexDigits[Int(byte & 0x0F)]
                index += 2
            }
            return index
        }
    }
}
