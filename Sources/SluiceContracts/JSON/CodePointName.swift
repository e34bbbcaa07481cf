import Foundation

/// Member-name comparison as JSON defines it: code point by code point.
///
/// Swift's `String ==` and `String` hashing use Unicode canonical equivalence, so `"é"` equals
/// `"e\u{301}"` and `"K"` equals `"\u{212A}"` (KELVIN SIGN). JSON (RFC 8259 §8.3) and JSON
/// Schema compare names by code points, and for valid UTF-8 equal code points are equal bytes.
/// Every place that matches a member name (the parser's member table, the schema's property
/// maps, `required`, value equality, the envelope's fields) goes through these, so no
/// normalization happens anywhere.
extension String {
    /// Whether the two strings have the same code points (the same UTF-8 bytes).
    @inline(__always)
    func hasSameCodePoints(as other: String) -> Bool {
        let left = utf8
        let right = other.utf8
        // O(1) for native strings, and most names differ in length.
        let count = left.count
        guard count == right.count else { return false }
        // Equal code points are canonically equivalent, so `!=` under `String ==` (which has a
        // fast path for small and ASCII strings) already answers most pairs; only names that are
        // equal under it have their bytes compared. memcmp, because a generic byte-by-byte
        // `elementsEqual` cost the envelope decoder a quarter of its speed.
        guard self == other else { return false }
        let contiguous = left.withContiguousStorageIfAvailable { leftBytes in
            right.withContiguousStorageIfAvailable { rightBytes in
                count == 0 || memcmp(leftBytes.baseAddress!, rightBytes.baseAddress!, count) == 0
            }
        }
        if let contiguous, let equal = contiguous { return equal }
        return left.elementsEqual(right)
    }

    /// Whether the string's code points are exactly those of `asciiName`, a name known to be
    /// all ASCII (a field name of the envelope, a schema's property name checked at load).
    ///
    /// For an ASCII name, `String ==` (which has fast paths for small and ASCII strings) plus
    /// equal UTF-8 lengths is exact: no ASCII character has a canonical decomposition, and the
    /// only non-ASCII code points canonically equivalent to ASCII ones are singletons (such as
    /// KELVIN SIGN for `K`) two or three bytes long, so a canonically equivalent string of the
    /// same UTF-8 length as an ASCII one is that very string. A byte compare would cost the
    /// envelope decoder a tenth of its speed.
    @inline(__always)
    func hasSameCodePoints(asASCII asciiName: String) -> Bool {
        utf8.count == asciiName.utf8.count && self == asciiName
    }

    /// Whether every code point is ASCII.
    var isASCII: Bool {
        // Over contiguous bytes: iterating the UTF8View of a small string is several times slower.
        utf8.withContiguousStorageIfAvailable { bytes in bytes.allSatisfy { $0 < 0x80 } } ?? utf8.allSatisfy { $0 < 0x80 }
    }

    /// Feeds the string's UTF-8 bytes to `hasher`: consistent with ``hasSameCodePoints(as:)``,
    /// where `String`'s own hashing is consistent with canonical equivalence instead.
    @inline(__always)
    func hashCodePoints(into hasher: inout Hasher) {
        let done: Void? = utf8.withContiguousStorageIfAvailable { hasher.combine(bytes: UnsafeRawBufferPointer($0)) }
        if done == nil {
            // A bridged string: the same bytes through a copy, so the hash cannot differ.
            Array(utf8).withUnsafeBytes { hasher.combine(bytes: $0) }
        }
        // The length ends the name, so ("ab","c") and ("a","bc") hash apart when combined.
        hasher.combine(utf8.count)
    }
}

/// A `String` that compares and hashes by code points, for dictionary and set keys.
struct CodePointKey: Hashable, Sendable {
    let text: String

    init(_ text: String) {
        self.text = text
    }

    static func == (lhs: CodePointKey, rhs: CodePointKey) -> Bool {
        lhs.text.hasSameCodePoints(as: rhs.text)
    }

    func hash(into hasher: inout Hasher) {
        text.hashCodePoints(into: &hasher)
    }
}
