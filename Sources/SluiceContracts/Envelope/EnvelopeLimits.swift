/// Bounds on what the ``EnvelopeDecoder`` will parse, so a hostile or broken producer cannot
/// make a consumer allocate without limit or recurse off its stack.
///
/// A record over any limit is refused as `ENVELOPE_TOO_LARGE` before (size) or while (depth,
/// string length) it is parsed.
public struct EnvelopeLimits: Sendable, Hashable {
    /// The largest record value accepted, in bytes. Default: 1 MiB (1,048,576 bytes).
    public var maxValueBytes: Int
    /// The deepest nesting of arrays and objects accepted; the envelope object itself is
    /// depth 1. Default: 32.
    public var maxDepth: Int
    /// The longest string (member name or value) accepted, in bytes of UTF-8. Default: 64 KiB.
    public var maxStringLength: Int

    /// Creates limits; every argument defaults to the value ``default`` uses.
    public init(maxValueBytes: Int = 1 << 20, maxDepth: Int = 32, maxStringLength: Int = 64 << 10) {
        self.maxValueBytes = maxValueBytes
        self.maxDepth = maxDepth
        self.maxStringLength = maxStringLength
    }

    /// 1 MiB values, depth 32, 64 KiB strings.
    public static let `default` = EnvelopeLimits()

    /// The same bounds in the JSON parser's terms.
    var parseLimits: JSONParseLimits {
        var limits = JSONParseLimits.default
        limits.maxBytes = maxValueBytes
        limits.maxDepth = maxDepth
        limits.maxStringLength = maxStringLength
        return limits
    }
}
