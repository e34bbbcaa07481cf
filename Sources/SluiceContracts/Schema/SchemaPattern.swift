import Foundation

/// A compiled `pattern` or `patternProperties` regular expression: an unanchored search with
/// ECMA-262 semantics.
///
/// Most schema patterns (`^[A-Z]{3}$`, `^pay_[A-Za-z0-9]+$`) run on ``PatternMatcher``, which
/// has ECMA-262's meaning of `\d`, `\w`, `$` and `.`, cannot backtrack catastrophically, and is
/// fast on short strings. Syntax outside its subset (`\p{L}`, look-around, back-references,
/// `\b`) runs on `NSRegularExpression` (ICU), compiled once here.
///
/// `@unchecked Sendable`: `NSRegularExpression` is immutable once created and documented as safe
/// to use from several threads at once; this type never mutates it.
final class SchemaPattern: @unchecked Sendable {
    /// The pattern as written in the schema.
    let source: String
    private let matcher: PatternMatcher?
    private let expression: NSRegularExpression?

    /// - Throws: The regular-expression engine's error for a pattern it cannot compile.
    init(_ source: String) throws {
        self.source = source
        if let matcher = PatternMatcher(source) {
            self.matcher = matcher
            self.expression = nil
        } else {
            self.matcher = nil
            self.expression = try NSRegularExpression(pattern: source, options: [])
        }
    }

    /// Whether the pattern matches anywhere in `text`.
    func matches(_ text: String) -> Bool {
        if let matcher { return matcher.matches(text) }
        guard let expression else { return false }
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return expression.firstMatch(in: text, options: [], range: range) != nil
    }
}
