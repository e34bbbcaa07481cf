/// Why ``JSONParser`` refused a document, and where.
///
/// The envelope decoder maps ``Kind-swift.enum/tooLarge``, ``Kind-swift.enum/tooDeep`` and
/// ``Kind-swift.enum/stringTooLong`` to `ENVELOPE_TOO_LARGE` and every other kind to
/// `ENVELOPE_NOT_JSON`.
public struct JSONParseError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The class of failure.
    public enum Kind: Sendable, Hashable {
        /// Not RFC 8259 JSON: a stray character, a trailing comma, a leading zero, a lone
        /// surrogate escape, a control character in a string, trailing garbage, early end.
        case syntax
        /// The document is longer than ``JSONParseLimits/maxBytes``.
        case tooLarge
        /// Arrays and objects nest deeper than ``JSONParseLimits/maxDepth``.
        case tooDeep
        /// A string is longer than ``JSONParseLimits/maxStringLength``.
        case stringTooLong
        /// A string holds bytes that are not well-formed UTF-8.
        case invalidUTF8
    }

    /// The class of failure.
    public var kind: Kind
    /// The byte offset in the document where the failure was found.
    public var offset: Int
    /// What was wrong, for a person.
    public var message: String

    /// Creates an error.
    public init(kind: Kind, offset: Int, message: String) {
        self.kind = kind
        self.offset = offset
        self.message = message
    }

    public var description: String { "\(message) (at byte \(offset))" }
}
