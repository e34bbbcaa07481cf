/// Bounds that keep a hostile document from exhausting memory or time in ``JSONParser``.
///
/// The size is checked before any parsing; depth and string length are checked while parsing,
/// so a document that breaks a limit costs at most one pass up to the point where it does.
public struct JSONParseLimits: Sendable, Hashable {
    /// The largest document accepted, in bytes. Default: 1 MiB.
    public var maxBytes: Int
    /// The deepest nesting of arrays and objects accepted; `[]` has depth 1. Default: 64.
    public var maxDepth: Int
    /// The longest string (member names included) accepted, in UTF-8 bytes after escapes are
    /// decoded. Default: 256 KiB.
    public var maxStringLength: Int

    /// 1 MiB, depth 64, strings up to 256 KiB.
    public static let `default` = JSONParseLimits(
        maxBytes: 1 << 20, maxDepth: 64, maxStringLength: 256 << 10)

    /// Creates limits; every value must be positive to accept anything.
    public init(maxBytes: Int, maxDepth: Int, maxStringLength: Int) {
        self.maxBytes = maxBytes
        self.maxDepth = maxDepth
        self.maxStringLength = maxStringLength
    }
}
