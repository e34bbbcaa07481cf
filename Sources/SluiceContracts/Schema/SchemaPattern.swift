/// A compiled `pattern` or `patternProperties` regular expression: an unanchored search with
/// ECMA-262 semantics.
///
/// Every pattern runs on ``PatternMatcher``, which has ECMA-262's meaning of `\d`, `\w`, `$` and
/// `.`, cannot backtrack catastrophically, and is fast on short strings. There is no second
/// engine: a pattern it does not implement (back-references, look-around) is refused when the
/// schema loads, so no answer ever depends on a time limit or on another engine's dialect.
final class SchemaPattern: Sendable {
    /// The pattern as written in the schema.
    let source: String
    private let matcher: PatternMatcher

    /// - Throws: ``PatternMatcher/CompileError``: `syntax` for text that is no ECMA-262
    ///   pattern, `unsupported` for syntax the linear-time matcher does not implement.
    init(_ source: String) throws(PatternMatcher.CompileError) {
        self.source = source
        self.matcher = try PatternMatcher(source)
    }

    /// Whether the pattern matches anywhere in `text`.
    func matches(_ text: String) -> Bool {
        matcher.matches(text)
    }
}
