/// A strict RFC 8259 JSON parser that reads UTF-8 bytes into ``JSONValue``.
///
/// It refuses trailing commas, leading zeros, lone surrogates in `\u` escapes, malformed UTF-8,
/// unescaped control characters in strings and anything after the document. It never recurses,
/// so nesting costs heap, not stack, and is bounded by ``JSONParseLimits/maxDepth``; the size is
/// checked before the first byte is read.
///
/// A repeated member name keeps its first position and its last value (see ``JSONObject``).
/// Numbers keep their exact decimal value (see ``JSONNumber``).
public enum JSONParser {
    /// Parses a document held in bytes.
    ///
    /// - Parameters:
    ///   - bytes: UTF-8 text; a byte order mark is refused, as RFC 8259 allows.
    ///   - limits: The size, depth and string bounds. Default: ``JSONParseLimits/default``.
    /// - Returns: The document's value.
    /// - Throws: ``JSONParseError`` naming the kind of failure and its byte offset.
    public static func parse(
        _ bytes: [UInt8], limits: JSONParseLimits = .default
    ) throws(JSONParseError) -> JSONValue {
        let result = bytes.withUnsafeBufferPointer { buffer in
            parseResult(buffer, limits: limits)
        }
        return try result.get()
    }

    /// Parses a document held in a string (its UTF-8 form is read in place).
    ///
    /// - Parameters:
    ///   - text: The document.
    ///   - limits: The size, depth and string bounds. Default: ``JSONParseLimits/default``.
    /// - Returns: The document's value.
    /// - Throws: ``JSONParseError`` naming the kind of failure and its byte offset.
    public static func parse(
        _ text: String, limits: JSONParseLimits = .default
    ) throws(JSONParseError) -> JSONValue {
        var text = text
        let result = text.withUTF8 { buffer in
            parseResult(buffer, limits: limits)
        }
        return try result.get()
    }

    /// Parses a document held in memory the caller owns, without copying it.
    ///
    /// - Parameters:
    ///   - buffer: UTF-8 text, read only during the call.
    ///   - limits: The size, depth and string bounds. Default: ``JSONParseLimits/default``.
    /// - Returns: The document's value.
    /// - Throws: ``JSONParseError`` naming the kind of failure and its byte offset.
    public static func parse(
        utf8 buffer: UnsafeBufferPointer<UInt8>, limits: JSONParseLimits = .default
    ) throws(JSONParseError) -> JSONValue {
        try parseResult(buffer, limits: limits).get()
    }

    static func parseResult(
        _ buffer: UnsafeBufferPointer<UInt8>, limits: JSONParseLimits
    ) -> Result<JSONValue, JSONParseError> {
        guard buffer.count <= limits.maxBytes else {
            return .failure(
                JSONParseError(
                    kind: .tooLarge, offset: limits.maxBytes,
                    message: "document of \(buffer.count) bytes is over the limit of \(limits.maxBytes) bytes"))
        }
        var reader = JSONReader(input: buffer, limits: limits)
        do {
            return .success(try reader.readDocument())
        } catch {
            return .failure(error)
        }
    }
}
