/// The state of one parse: the input, the cursor, and the containers still open.
///
/// Open containers live on explicit stacks instead of the call stack: `values` holds every
/// value parsed but not yet placed in its container, `keys` the member names waiting for their
/// objects, and `frames` where each open container's values and names begin. Closing a
/// container moves its slice of the stacks into one array or object.
struct JSONReader {
    private struct Frame {
        var isObject: Bool
        var valueStart: Int
        var keyStart: Int
    }

    private let input: UnsafeBufferPointer<UInt8>
    private let end: Int
    private let limits: JSONParseLimits
    private var position = 0
    private var values: [JSONValue] = []
    private var keys: [String] = []
    /// A fingerprint of each name in `keys`: duplicate detection compares these integers
    /// first and names (by code point, never `String ==`) only when they match.
    private var keyFingerprints: [UInt64] = []
    private var frames: [Frame] = []
    /// Reused for strings with escapes, so only the final `String` allocates.
    private var scratch: [UInt8] = []
    private var lastKeyFingerprint: UInt64 = 0

    init(input: UnsafeBufferPointer<UInt8>, limits: JSONParseLimits) {
        self.input = input
        self.end = input.count
        self.limits = limits
    }

    private func failure(_ message: String, kind: JSONParseError.Kind = .syntax, at offset: Int? = nil)
        -> JSONParseError
    {
        JSONParseError(kind: kind, offset: offset ?? position, message: message)
    }

    private func describeCurrent() -> String {
        guard position < end else { return "end of input" }
        let byte = input[position]
        if byte >= 0x20 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x\(String(byte, radix: 16))"
    }

    @inline(__always)
    private mutating func skipWhitespace() {
        while position < end {
            let byte = input[position]
            // Only the four characters RFC 8259 calls whitespace.
            guard byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 else { return }
            position += 1
        }
    }

    mutating func readDocument() throws(JSONParseError) -> JSONValue {
        // Enough for a typical envelope without regrowing; larger documents grow as usual.
        values.reserveCapacity(32)
        keys.reserveCapacity(32)
        keyFingerprints.reserveCapacity(32)
        frames.reserveCapacity(8)
        readValue: while true {
            skipWhitespace()
            guard position < end else {
                throw failure("expected a value, found end of input")
            }
            switch input[position] {
            case UInt8(ascii: "{"):
                try open(isObject: true)
                skipWhitespace()
                if position < end && input[position] == UInt8(ascii: "}") {
                    position += 1
                    closeObject()
                } else {
                    try readMemberName()
                    continue readValue
                }
            case UInt8(ascii: "["):
                try open(isObject: false)
                skipWhitespace()
                if position < end && input[position] == UInt8(ascii: "]") {
                    position += 1
                    closeArray()
                } else {
                    continue readValue
                }
            case UInt8(ascii: "\""):
                values.append(.string(try readString()))
            case UInt8(ascii: "t"):
                try expectLiteral("true")
                values.append(.bool(true))
            case UInt8(ascii: "f"):
                try expectLiteral("false")
                values.append(.bool(false))
            case UInt8(ascii: "n"):
                try expectLiteral("null")
                values.append(.null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                var scanner = JSONNumberScanner(input: input, position: position)
                values.append(.number(try scanner.scan()))
                position = scanner.position
            default:
                throw failure("expected a value, found \(describeCurrent())")
            }

            // A value is complete: continue its container, close containers, or finish.
            while true {
                guard let frame = frames.last else {
                    skipWhitespace()
                    guard position == end else {
                        throw failure("unexpected \(describeCurrent()) after the document")
                    }
                    return values.removeLast()
                }
                skipWhitespace()
                guard position < end else {
                    throw failure("unexpected end of input inside \(frame.isObject ? "an object" : "an array")")
                }
                let byte = input[position]
                if byte == UInt8(ascii: ",") {
                    position += 1
                    if frame.isObject {
                        skipWhitespace()
                        try readMemberName()
                    }
                    continue readValue
                }
                if frame.isObject && byte == UInt8(ascii: "}") {
                    position += 1
                    closeObject()
                } else if !frame.isObject && byte == UInt8(ascii: "]") {
                    position += 1
                    closeArray()
                } else {
                    throw failure(
                        "expected ',' or '\(frame.isObject ? "}" : "]")', found \(describeCurrent())")
                }
            }
        }
    }

    private mutating func open(isObject: Bool) throws(JSONParseError) {
        guard frames.count < limits.maxDepth else {
            throw failure("nesting deeper than the limit of \(limits.maxDepth)", kind: .tooDeep)
        }
        frames.append(Frame(isObject: isObject, valueStart: values.count, keyStart: keys.count))
        position += 1
    }

    /// Reads `"name"` and the `:` after it.
    private mutating func readMemberName() throws(JSONParseError) {
        guard position < end, input[position] == UInt8(ascii: "\"") else {
            throw failure("expected a member name in double quotes, found \(describeCurrent())")
        }
        let key = try readString()
        keys.append(key)
        keyFingerprints.append(lastKeyFingerprint)
        skipWhitespace()
        guard position < end, input[position] == UInt8(ascii: ":") else {
            throw failure("expected ':' after a member name, found \(describeCurrent())")
        }
        position += 1
    }

    private mutating func closeArray() {
        let frame = frames.removeLast()
        let elements = Array(values[frame.valueStart...])
        values.removeSubrange(frame.valueStart...)
        values.append(.array(elements))
    }

    private mutating func closeObject() {
        let frame = frames.removeLast()
        let count = keys.count - frame.keyStart
        var members: [(key: String, value: JSONValue)] = []
        members.reserveCapacity(count)
        var hasDuplicate = false
        for offset in 0..<count {
            let fingerprint = keyFingerprints[frame.keyStart + offset]
            if !hasDuplicate && count <= 32 {
                for earlier in 0..<offset
                where keyFingerprints[frame.keyStart + earlier] == fingerprint
                    && keys[frame.keyStart + earlier].hasSameCodePoints(as: keys[frame.keyStart + offset])
                {
                    hasDuplicate = true
                    break
                }
            }
            members.append((keys[frame.keyStart + offset], values[frame.valueStart + offset]))
        }
        keys.removeSubrange(frame.keyStart...)
        keyFingerprints.removeSubrange(frame.keyStart...)
        values.removeSubrange(frame.valueStart...)
        if hasDuplicate || count > 32 {
            // Large objects go through a dictionary so a hostile document cannot make
            // duplicate detection quadratic.
            values.append(.object(JSONObject(members)))
        } else {
            values.append(.object(JSONObject(uniqueMembers: members)))
        }
    }

    private mutating func expectLiteral(_ literal: StaticString) throws(JSONParseError) {
        let count = literal.utf8CodeUnitCount
        guard end - position >= count else {
            throw failure("expected '\(literal)', found \(describeCurrent())")
        }
        let text = literal.utf8Start
        for index in 0..<count where input[position + index] != text[index] {
            throw failure("expected '\(literal)', found \(describeCurrent())")
        }
        position += count
    }

    // MARK: Strings

    /// Reads a string whose opening quote is at ``position``; sets ``lastKeyFingerprint``.
    /// A `String` from bytes already known to be valid UTF-8. `String(decoding:as:)` is generic and
    /// looks up its specialization's metadata on every call, which showed in profiles at ~15% of
    /// a whole envelope decode; this initializer is not generic.
    @inline(__always)
    static func makeString(_ bytes: UnsafeBufferPointer<UInt8>) -> String {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return "" }
        return String(unsafeUninitializedCapacity: bytes.count) { buffer in
            buffer.baseAddress.unsafelyUnwrapped.update(from: source, count: bytes.count)
            return bytes.count
        }
    }

    private mutating func readString() throws(JSONParseError) -> String {
        let quote = position
        position += 1
        let start = position
        var highBits: UInt64 = 0
        // Eight bytes at a time while none of them is a quote, a backslash or a control
        // character (SWAR: each test below is exact about whether any byte qualifies).
        let ones: UInt64 = 0x0101_0101_0101_0101
        let highs: UInt64 = 0x8080_8080_8080_8080
        let raw = UnsafeRawPointer(input.baseAddress.unsafelyUnwrapped)
        while end - position >= 8 {
            let word = raw.loadUnaligned(fromByteOffset: position, as: UInt64.self)
            let quotes = word ^ (ones &* 0x22)
            let backslashes = word ^ (ones &* 0x5C)
            let special =
                ((quotes &- ones) & ~quotes) | ((backslashes &- ones) & ~backslashes)
                | ((word &- ones &* 0x20) & ~word)
            if special & highs != 0 { break }
            highBits |= word
            position += 8
        }
        while position < end {
            let byte = input[position]
            if byte == UInt8(ascii: "\"") {
                let length = position - start
                guard length <= limits.maxStringLength else {
                    throw failure(
                        "string of \(length) bytes is over the limit of \(limits.maxStringLength)",
                        kind: .stringTooLong, at: quote)
                }
                position += 1
                let slice = UnsafeBufferPointer(rebasing: input[start..<start + length])
                if highBits & highs != 0 {
                    if let bad = UTF8Validation.firstInvalidOffset(in: slice) {
                        throw failure("invalid UTF-8 in a string", kind: .invalidUTF8, at: start + bad)
                    }
                }
                lastKeyFingerprint = Self.fingerprint(slice)
                return Self.makeString(slice)
            }
            if byte == UInt8(ascii: "\\") {
                return try readEscapedString(quote: quote, start: start)
            }
            if byte < 0x20 {
                throw failure("unescaped control character 0x\(String(byte, radix: 16)) in a string")
            }
            highBits |= UInt64(byte)
            position += 1
        }
        throw failure("unterminated string", at: quote)
    }

    /// A cheap summary of a name (its length and some of its bytes) for duplicate detection:
    /// equal names always have equal fingerprints.
    @inline(__always)
    private static func fingerprint(_ bytes: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var print = UInt64(bytes.count) << 48
        let count = bytes.count
        if count > 0 {
            print ^= UInt64(bytes[0]) | UInt64(bytes[count - 1]) << 8 | UInt64(bytes[count / 2]) << 16
        }
        if count > 3 {
            print ^= UInt64(bytes[1]) << 24 | UInt64(bytes[count - 2]) << 32 | UInt64(bytes[count / 3]) << 40
        }
        return print
    }

    /// The slow path for strings with escapes: decode into ``scratch``.
    private mutating func readEscapedString(quote: Int, start: Int) throws(JSONParseError) -> String {
        scratch.removeAll(keepingCapacity: true)
        scratch.append(contentsOf: UnsafeBufferPointer(rebasing: input[start..<position]))
        var highBits: UInt8 = 0
        for byte in scratch { highBits |= byte }
        while position < end {
            let byte = input[position]
            if byte == UInt8(ascii: "\"") {
                position += 1
                guard scratch.count <= limits.maxStringLength else {
                    throw failure(
                        "string of \(scratch.count) bytes is over the limit of \(limits.maxStringLength)",
                        kind: .stringTooLong, at: quote)
                }
                if highBits & 0x80 != 0 {
                    let invalid = scratch.withUnsafeBufferPointer { UTF8Validation.firstInvalidOffset(in: $0) }
                    if invalid != nil {
                        throw failure("invalid UTF-8 in a string", kind: .invalidUTF8, at: start)
                    }
                }
                lastKeyFingerprint = scratch.withUnsafeBufferPointer { Self.fingerprint($0) }
                return scratch.withUnsafeBufferPointer { Self.makeString($0) }
            }
            if byte < 0x20 {
                throw failure("unescaped control character 0x\(String(byte, radix: 16)) in a string")
            }
            if byte != UInt8(ascii: "\\") {
                highBits |= byte
                scratch.append(byte)
                position += 1
                continue
            }
            let escapeStart = position
            position += 1
            guard position < end else { break }
            let escaped = input[position]
            position += 1
            switch escaped {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): scratch.append(escaped)
            case UInt8(ascii: "b"): scratch.append(0x08)
            case UInt8(ascii: "f"): scratch.append(0x0C)
            case UInt8(ascii: "n"): scratch.append(0x0A)
            case UInt8(ascii: "r"): scratch.append(0x0D)
            case UInt8(ascii: "t"): scratch.append(0x09)
            case UInt8(ascii: "u"):
                var scalar = try readHexQuad()
                if scalar >= 0xD800 && scalar <= 0xDBFF {
                    guard end - position >= 6, input[position] == UInt8(ascii: "\\"),
                        input[position + 1] == UInt8(ascii: "u")
                    else {
                        throw failure("lone high surrogate in a \\u escape", at: escapeStart)
                    }
                    position += 2
                    let low = try readHexQuad()
                    guard low >= 0xDC00 && low <= 0xDFFF else {
                        throw failure("high surrogate not followed by a low surrogate", at: escapeStart)
                    }
                    scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                } else if scalar >= 0xDC00 && scalar <= 0xDFFF {
                    throw failure("lone low surrogate in a \\u escape", at: escapeStart)
                }
                appendUTF8(scalar)
            default:
                throw failure("invalid escape '\\\(Character(Unicode.Scalar(escaped)))'", at: escapeStart)
            }
        }
        throw failure("unterminated string", at: quote)
    }

    private mutating func readHexQuad() throws(JSONParseError) -> UInt32 {
        guard end - position >= 4 else { throw failure("expected four hex digits after \\u") }
        var value: UInt32 = 0
        for _ in 0..<4 {
            let byte = input[position]
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw failure("expected a hex digit in a \\u escape")
            }
            value = value << 4 | UInt32(digit)
            position += 1
        }
        return value
    }

    private mutating func appendUTF8(_ scalar: UInt32) {
        switch scalar {
        case 0..<0x80:
            scratch.append(UInt8(scalar))
        case 0x80..<0x800:
            scratch.append(UInt8(0xC0 | scalar >> 6))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        case 0x800..<0x10000:
            scratch.append(UInt8(0xE0 | scalar >> 12))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        default:
            scratch.append(UInt8(0xF0 | scalar >> 18))
            scratch.append(UInt8(0x80 | scalar >> 12 & 0x3F))
            scratch.append(UInt8(0x80 | scalar >> 6 & 0x3F))
            scratch.append(UInt8(0x80 | scalar & 0x3F))
        }
    }
}
