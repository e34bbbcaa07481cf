/// Rewrites of SQL text the PostgreSQL store needs: numbering `?` placeholders and splitting a
/// migration script into statements.
///
/// Both walk the text the way the server's lexer does, so that a `?` or a `;` inside a string
/// literal (`'…'`, `E'…'`), a quoted identifier (`"…"`), a dollar-quoted body (`$$…$$`,
/// `$tag$…$tag$`) or a comment (`-- …`, `/* … */`, nested) is left alone.
enum PostgresSQLText {
    /// `sql` with each `?` placeholder outside literals and comments replaced by `$1`, `$2`, …,
    /// and how many there were.
    static func numberingPlaceholders(in sql: String) -> (sql: String, count: Int) {
        var output: [UInt8] = []
        output.reserveCapacity(sql.utf8.count + 8)
        var count = 0
        scan(sql) { segment, bytes in
            if segment == .code {
                for byte in bytes {
                    if byte == UInt8(ascii: "?") {
                        count += 1
                        output.append(UInt8(ascii: "$"))
                        output.append(contentsOf: String(count).utf8)
                    } else {
                        output.append(byte)
                    }
                }
            } else {
                output.append(contentsOf: bytes)
            }
        }
        return (String(decoding: output, as: UTF8.self), count)
    }

    /// The statements of a script separated by `;` outside literals and comments, trimmed, without
    /// the empty ones (the extended query protocol runs one statement at a time).
    static func statements(in script: String) -> [String] {
        var statements: [String] = []
        var current: [UInt8] = []
        var hasCode = false
        func finish() {
            if hasCode {
                let text = String(decoding: current, as: UTF8.self)
                statements.append(text.trimmingWhitespace())
            }
            current.removeAll(keepingCapacity: true)
            hasCode = false
        }
        scan(script) { segment, bytes in
            switch segment {
            case .code:
                for byte in bytes {
                    if byte == UInt8(ascii: ";") {
                        finish()
                    } else {
                        current.append(byte)
                        if !isWhitespace(byte) { hasCode = true }
                    }
                }
            case .comment:
                current.append(contentsOf: bytes)
            case .quoted:
                current.append(contentsOf: bytes)
                hasCode = true
            }
        }
        finish()
        return statements
    }

    enum Segment {
        /// Plain SQL, where placeholders and separators count.
        case code
        /// A string literal, quoted identifier or dollar-quoted body, quotes included.
        case quoted
        /// A comment, markers included.
        case comment
    }

    /// Calls `visit` with consecutive segments that together make up `sql`.
    static func scan(_ sql: String, _ visit: (Segment, ArraySlice<UInt8>) -> Void) {
        let bytes = Array(sql.utf8)
        var index = 0
        var codeStart = 0
        func flushCode(upTo end: Int) {
            if end > codeStart { visit(.code, bytes[codeStart..<end]) }
        }
        while index < bytes.count {
            let byte = bytes[index]
            let next: UInt8? = index + 1 < bytes.count ? bytes[index + 1] : nil
            var end: Int? = nil
            var segment = Segment.quoted
            switch byte {
            case UInt8(ascii: "'"):
                // E'…' strings take backslash escapes; the E is part of the code before.
                let escapes = index > 0 && (bytes[index - 1] | 0x20) == UInt8(ascii: "e")
                    && (index < 2 || !isIdentifierByte(bytes[index - 2]))
                end = endOfQuoted(bytes, from: index, quote: UInt8(ascii: "'"), backslashEscapes: escapes)
            case UInt8(ascii: "\""):
                end = endOfQuoted(bytes, from: index, quote: UInt8(ascii: "\""), backslashEscapes: false)
            case UInt8(ascii: "-") where next == UInt8(ascii: "-"):
                segment = .comment
                var cursor = index + 2
                while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "\n") { cursor += 1 }
                end = cursor
            case UInt8(ascii: "/") where next == UInt8(ascii: "*"):
                segment = .comment
                end = endOfBlockComment(bytes, from: index)
            case UInt8(ascii: "$") where index == 0 || !isIdentifierByte(bytes[index - 1]):
                end = endOfDollarQuoted(bytes, from: index)
            default:
                break
            }
            if let end {
                flushCode(upTo: index)
                visit(segment, bytes[index..<end])
                index = end
                codeStart = end
            } else {
                index += 1
            }
        }
        flushCode(upTo: bytes.count)
    }

    /// The index just past the closing quote (doubled quotes stay inside), or the end.
    private static func endOfQuoted(_ bytes: [UInt8], from start: Int, quote: UInt8, backslashEscapes: Bool) -> Int {
        var cursor = start + 1
        while cursor < bytes.count {
            let byte = bytes[cursor]
            if backslashEscapes && byte == UInt8(ascii: "\\") {
                cursor += 2
                continue
            }
            if byte == quote {
                if cursor + 1 < bytes.count && bytes[cursor + 1] == quote {
                    cursor += 2
                    continue
                }
                return cursor + 1
            }
            cursor += 1
        }
        return bytes.count
    }

    /// The index just past a (possibly nested) block comment, or the end.
    private static func endOfBlockComment(_ bytes: [UInt8], from start: Int) -> Int {
        var depth = 0
        var cursor = start
        while cursor + 1 < bytes.count {
            if bytes[cursor] == UInt8(ascii: "/") && bytes[cursor + 1] == UInt8(ascii: "*") {
                depth += 1
                cursor += 2
            } else if bytes[cursor] == UInt8(ascii: "*") && bytes[cursor + 1] == UInt8(ascii: "/") {
                depth -= 1
                cursor += 2
                if depth == 0 { return cursor }
            } else {
                cursor += 1
            }
        }
        return bytes.count
    }

    /// The index just past a `$tag$…$tag$` body, or `nil` when the `$` opens no dollar quote
    /// (a positional parameter such as `$1`).
    private static func endOfDollarQuoted(_ bytes: [UInt8], from start: Int) -> Int? {
        var cursor = start + 1
        while cursor < bytes.count, bytes[cursor] != UInt8(ascii: "$") {
            let byte = bytes[cursor]
            let isTagByte = isIdentifierByte(byte) && !(cursor == start + 1 && isDigit(byte))
            guard isTagByte else { return nil }
            cursor += 1
        }
        guard cursor < bytes.count else { return nil }
        let delimiter = bytes[start...cursor]
        var search = cursor + 1
        while search + delimiter.count <= bytes.count {
            if bytes[search..<(search + delimiter.count)].elementsEqual(delimiter) { return search + delimiter.count }
            search += 1
        }
        return bytes.count
    }

    private static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    private static func isIdentifierByte(_ byte: UInt8) -> Bool {
        isDigit(byte) || byte == UInt8(ascii: "_") || byte >= 0x80
            || (byte | 0x20 >= UInt8(ascii: "a") && byte | 0x20 <= UInt8(ascii: "z"))
    }

    private static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\r")
    }
}

extension String {
    fileprivate func trimmingWhitespace() -> String {
        var slice = Substring(self)
        while let first = slice.first, first.isWhitespace { slice.removeFirst() }
        while let last = slice.last, last.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}
