/// One way an instance fails a ``JSONSchema``.
public struct SchemaViolation: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// Where in the instance, as a JSON pointer (RFC 6901); `""` is the instance itself.
    public var instancePath: String
    /// Where in the schema, as a JSON pointer to the failing keyword, e.g. `/properties/amount/minimum`.
    public var schemaPath: String
    /// The failing keyword, e.g. `minimum`.
    public var keyword: String
    /// What was expected and what was found, e.g. `expected integer, got string`.
    public var message: String

    /// Creates a violation.
    public init(instancePath: String, schemaPath: String, keyword: String, message: String) {
        self.instancePath = instancePath
        self.schemaPath = schemaPath
        self.keyword = keyword
        self.message = message
    }

    public var description: String {
        "\(instancePath.isEmpty ? "/" : instancePath): \(message) (\(keyword) at \(schemaPath.isEmpty ? "/" : schemaPath))"
    }
}
