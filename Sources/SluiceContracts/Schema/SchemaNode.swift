/// One compiled schema: every keyword already checked and decoded, so validation never looks at
/// the schema's JSON again.
///
/// Subschemas are indices into the ``JSONSchema``'s node table rather than nested values, which
/// lets `$ref` point anywhere, cycles included, without reference counting.
struct SchemaNode: Sendable {
    /// JSON Schema's seven type names.
    enum TypeName: String, Sendable {
        case null, boolean, object, array, number, string, integer
    }

    /// The schema's JSON pointer in its document; `""` is the root.
    var path: String
    /// `true`/`false` for boolean schemas, `nil` for object schemas.
    var alwaysValid: Bool?

    var types: [TypeName]?
    var enumValues: [JSONValue]?
    var constValue: JSONValue?
    var ref: Int?

    var properties: [(name: String, node: Int)] = []
    var patternProperties: [(pattern: SchemaPattern, node: Int)] = []
    var additionalProperties: Int?
    var required: [String] = []
    var dependentRequired: [(name: String, required: [String])] = []
    /// Whether every name in `properties`, `required` and `dependentRequired` is ASCII, so that
    /// members are matched with `hasSameCodePoints(asASCII:)`, without a byte compare.
    var memberNamesAreASCII = false
    var minProperties: Int?
    var maxProperties: Int?

    var prefixItems: [Int] = []
    var items: Int?
    var contains: Int?
    var minContains: Int?
    var maxContains: Int?
    var minItems: Int?
    var maxItems: Int?
    var uniqueItems = false

    var minimum: JSONNumber?
    var maximum: JSONNumber?
    var exclusiveMinimum: JSONNumber?
    var exclusiveMaximum: JSONNumber?
    var multipleOf: JSONNumber?

    var minLength: Int?
    var maxLength: Int?
    var pattern: SchemaPattern?

    var allOf: [Int] = []
    var anyOf: [Int] = []
    var oneOf: [Int] = []
    var not: Int?
    var ifNode: Int?
    var thenNode: Int?
    var elseNode: Int?

    init(path: String) {
        self.path = path
    }

    /// Whether the node has an object keyword that looks at members one by one.
    var appliesToMembers: Bool {
        !properties.isEmpty || !patternProperties.isEmpty || additionalProperties != nil
    }

    /// Subschemas applied to the same instance (not to a part of it): a cycle through these
    /// alone would never end.
    var inPlaceSubschemas: [Int] {
        var result = allOf + anyOf + oneOf
        for optional in [ref, not, ifNode, thenNode, elseNode] {
            if let node = optional { result.append(node) }
        }
        return result
    }
}
