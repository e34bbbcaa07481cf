/// A parsed JSON document.
///
/// The envelope decoder, the schema validator and the schema registry all work on this one
/// representation, so a value is parsed once per record. Equality is JSON Schema's equality:
/// numbers compare by mathematical value (`1 == 1.0`), objects ignore member order, arrays
/// compare element by element.
public enum JSONValue: Sendable, Hashable {
    case null
    case bool(Bool)
    /// Boxed (`indirect`): a number may hold a reference to the digits of a wide literal, and
    /// inline that made every copy and destruction of every value costlier (a fifth of the
    /// envelope decoder's time); boxed, a number costs one allocation when parsed instead.
    indirect case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

extension JSONValue {
    /// JSON equality: strings compare code point by code point (not by Unicode canonical
    /// equivalence, as Swift's `String ==` does), numbers by value, objects regardless of order.
    public static func == (lhs: JSONValue, rhs: JSONValue) -> Bool {
        switch (lhs, rhs) {
        case (.null, .null): true
        case (.bool(let a), .bool(let b)): a == b
        case (.number(let a), .number(let b)): a == b
        case (.string(let a), .string(let b)): a.utf8.elementsEqual(b.utf8)
        case (.array(let a), .array(let b)): a == b
        case (.object(let a), .object(let b)): a == b
        default: false
        }
    }

    public func hash(into hasher: inout Hasher) {
        switch self {
        case .null: hasher.combine(0)
        case .bool(let value): hasher.combine(value)
        case .number(let number): hasher.combine(number)
        case .string(let text):
            hasher.combine(3)
            for byte in text.utf8 { hasher.combine(byte) }
        case .array(let elements): hasher.combine(elements)
        case .object(let object): hasher.combine(object)
        }
    }
}
