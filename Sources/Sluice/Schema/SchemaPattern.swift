import Foundation

/// A compiled `pattern` regular expression (ECMA-262 semantics as ICU implements them: an
/// unanchored search).
///
/// `@unchecked Sendable`: `NSRegularExpression` is immutable once created and documented as safe
/// to use from several threads at once; this box never mutates it.
final class SchemaPattern: @unchecked Sendable {
    let source: String
    private let expression: NSRegularExpression

    /// - Throws: The regular-expression engine's error for a pattern it cannot compile.
    init(_ source: String) throws {
        self.source = source
        self.expression = try NSRegularExpression(pattern: source, options: [])
    }

    func matches(_ text: String) -> Bool {
        let range = NSRange(text.startIndex..<text.endIndex, in: text)
        return expression.firstMatch(in: text, options: [], range: range) != nil
    }
}
