/// Lets a payload type keep part of its data untyped (`var attributes: JSONValue`).
///
/// ``JSONValueDecoder`` hands the value over as is; other decoders (Foundation's `JSONDecoder`)
/// go through this initializer.
extension JSONValue: Decodable {
    public init(from decoder: any Decoder) throws {
        // `Decoder` has no "what kind is this?" query, so each `try?` below probes one kind;
        // a failed probe is an answer, not a lost error. The last attempt throws for real.
        if let container = try? decoder.container(keyedBy: AnyMemberKey.self) {
            var members: [(key: String, value: JSONValue)] = []
            for key in container.allKeys {
                members.append((key.stringValue, try container.decode(JSONValue.self, forKey: key)))
            }
            self = .object(JSONObject(members))
            return
        }
        if var container = try? decoder.unkeyedContainer() {
            var elements: [JSONValue] = []
            while !container.isAtEnd { elements.append(try container.decode(JSONValue.self)) }
            self = .array(elements)
            return
        }
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let bool = try? container.decode(Bool.self) {
            self = .bool(bool)
        } else if let integer = try? container.decode(Int64.self) {
            self = .number(JSONNumber(integer))
        } else if let double = try? container.decode(Double.self) {
            self = .number(JSONNumber(double))
        } else {
            self = .string(try container.decode(String.self))
        }
    }
}

/// A coding key accepting any member name.
private struct AnyMemberKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}
