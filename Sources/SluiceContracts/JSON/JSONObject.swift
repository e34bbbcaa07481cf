/// A JSON object: its members in document order, each name once.
///
/// When a document repeats a member name, ``JSONParser`` keeps one member: at the position
/// where the name first appeared, with the value it had last ("last wins", as in ECMAScript's
/// `JSON.parse`). So ``members`` never holds two members with the same name, and counting
/// keywords such as `minProperties` see what a reader of the object sees.
///
/// Names are the same only when their code points are (RFC 8259): `"é"` and `"e\u0301"` are
/// two members, although Swift's `String ==` calls them equal. The subscript, equality,
/// hashing and duplicate folding all compare code points.
public struct JSONObject: Sendable, Hashable {
    /// The members in the order they appeared.
    public var members: [(key: String, value: JSONValue)]

    /// Creates an object from members; when a name repeats, the last value wins.
    ///
    /// The position of the first occurrence is kept, so `{"a":1,"b":2,"a":3}` reads as
    /// `{"a":3,"b":2}`.
    public init(_ members: [(key: String, value: JSONValue)] = []) {
        self.members = members
        removeDuplicateNames()
    }

    /// Wraps members that the caller already knows to have distinct names.
    init(uniqueMembers: [(key: String, value: JSONValue)]) {
        self.members = uniqueMembers
    }

    /// The number of members.
    public var count: Int { members.count }

    /// The value of the member whose name has exactly the code points of `key`, or `nil`
    /// when there is none (a canonically equivalent name is a different member).
    public subscript(key: String) -> JSONValue? {
        // Envelopes and payloads have a handful of members: a linear scan beats hashing. Both
        // comparisons check UTF-8 lengths first (O(1) for native strings); an ASCII key (almost
        // every key) needs no byte compare (see hasSameCodePoints(asASCII:)).
        value(named: key, isASCII: key.isASCII)
    }

    /// The value of the member named `name`, by code point; `isASCII` says whether `name` is all
    /// ASCII, which needs no byte compare (see `String.hasSameCodePoints(asASCII:)`).
    @inline(__always)
    func value(named name: String, isASCII: Bool) -> JSONValue? {
        if isASCII {
            for member in members where member.key.hasSameCodePoints(asASCII: name) {
                return member.value
            }
        } else {
            for member in members where member.key.hasSameCodePoints(as: name) {
                return member.value
            }
        }
        return nil
    }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool {
        guard lhs.members.count == rhs.members.count else { return false }
        for member in lhs.members where rhs[member.key] != member.value { return false }
        return true
    }

    public func hash(into hasher: inout Hasher) {
        // Member order must not change the hash, because it does not change equality.
        var combined = 0
        for member in members {
            var memberHasher = Hasher()
            member.key.hashCodePoints(into: &memberHasher)
            memberHasher.combine(member.value)
            combined ^= memberHasher.finalize()
        }
        hasher.combine(members.count)
        hasher.combine(combined)
    }

    /// Folds repeated names into their first position with their last value.
    mutating func removeDuplicateNames() {
        guard members.count > 1 else { return }
        var firstIndex: [CodePointKey: Int] = [:]
        firstIndex.reserveCapacity(members.count)
        var unique: [(key: String, value: JSONValue)] = []
        var sawDuplicate = false
        for member in members {
            if let index = firstIndex[CodePointKey(member.key)] {
                unique[index].value = member.value
                sawDuplicate = true
            } else {
                firstIndex[CodePointKey(member.key)] = unique.count
                unique.append(member)
            }
        }
        if sawDuplicate { members = unique }
    }
}
