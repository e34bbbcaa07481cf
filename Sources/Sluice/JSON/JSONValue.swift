/// A parsed JSON document.
///
/// The envelope decoder, the schema validator and the schema registry all work on this one
/// representation, so a value is parsed once per record.
public enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(JSONNumber)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)
}

/// A JSON number, kept exact enough for JSON Schema (`multipleOf`, integer checks, big integers).
public struct JSONNumber: Sendable, Equatable {
    /// The number as a `Double` (may round for very large or very precise literals).
    public var doubleValue: Double
    /// The exact value when the number is an integer that fits in `Int64` (`1.0` counts as one).
    public var int64Value: Int64?

    public init(_ value: Int64) {
        self.doubleValue = Double(value)
        self.int64Value = value
    }

    public init(_ value: Double) {
        self.doubleValue = value
        if value.rounded() == value, let exact = Int64(exactly: value) {
            self.int64Value = exact
        } else {
            self.int64Value = nil
        }
    }
}

/// A JSON object: its members in document order.
public struct JSONObject: Sendable, Equatable {
    /// The members in the order they appeared.
    public var members: [(key: String, value: JSONValue)]

    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
    }

    /// The value of the member named `key` (the last one, when a name repeats).
    public subscript(key: String) -> JSONValue? {
        for member in members.reversed() where member.key == key { return member.value }
        return nil
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members where rhs[member.key] != member.value { return false }
        return true
    }
}
