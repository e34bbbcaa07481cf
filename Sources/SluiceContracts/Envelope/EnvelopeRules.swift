/// The lexical rules of envelope fields, shared by the decoder, the schema registry (directory
/// names are event types) and producers that want to check before sending.
public enum EnvelopeRules {
    /// The longest identifier accepted: 128 characters.
    public static let maxIdentifierLength = 128

    /// Whether `text` is a valid `event_id`, `correlation_id` or `causation_id`:
    /// 1–128 characters, each one of `A-Z a-z 0-9 . _ : -`.
    public static func isValidIdentifier(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard !bytes.isEmpty, bytes.count <= maxIdentifierLength else { return false }
            for byte in bytes where !isIdentifierByte(byte) { return false }
            return true
        }
    }

    /// Whether `text` is a valid `event_type`.
    ///
    /// The rule: two or more dot-separated segments, each matching `[a-z][a-z0-9_]*`, and the
    /// last segment ending in `ed`, the past-tense marker: `billing.payment_authorized`,
    /// `orders.order_placed`, `inventory.stock_reserved`. As a regular expression:
    /// `^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$` with a last segment matching `.*ed$`. At most
    /// 255 characters. Irregular past tenses (`sent`, `paid`) must be spelled as a
    /// regular one (`dispatched`, `settled`): a deliberate, checkable convention.
    public static func isValidEventType(_ text: String) -> Bool {
        var text = text
        return text.withUTF8 { bytes in
            guard bytes.count >= 5, bytes.count <= 255 else { return false }
            var segments = 1
            var atSegmentStart = true
            for byte in bytes {
                if atSegmentStart {
                    guard byte >= UInt8(ascii: "a"), byte <= UInt8(ascii: "z") else { return false }
                    atSegmentStart = false
                } else if byte == UInt8(ascii: ".") {
                    segments += 1
                    atSegmentStart = true
                } else {
                    let isLower = byte >= UInt8(ascii: "a") && byte <= UInt8(ascii: "z")
                    let isDigit = byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9")
                    guard isLower || isDigit || byte == UInt8(ascii: "_") else { return false }
                }
            }
            guard !atSegmentStart, segments >= 2 else { return false }
            // The past-tense marker; a last segment that is only "ed" names nothing, so refuse it.
            let count = bytes.count
            return bytes[count - 2] == UInt8(ascii: "e") && bytes[count - 1] == UInt8(ascii: "d")
                && bytes[count - 3] != UInt8(ascii: ".")
        }
    }

    @inline(__always)
    static func isIdentifierByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"),
            UInt8(ascii: ":"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
