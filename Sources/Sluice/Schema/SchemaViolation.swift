/// One way an instance fails a ``JSONSchema``.
public struct SchemaViolation: Sendable, Hashable, CustomStringConvertible {
    /// JSON pointer (RFC 6901) to the failing part of the instance; `""` is the instance itself.
    public var instancePath: String
    /// JSON pointer to the failing keyword in the schema.
    public var schemaPath: String
    /// The keyword that failed, e.g. `type` or `required`.
    public var keyword: String
    /// What was expected, for a person: "expected integer, got string".
    public var message: String

    public init(instancePath: String, schemaPath: String, keyword: String, message: String) {
        self.instancePath = instancePath
        self.schemaPath = schemaPath
        self.keyword = keyword
        self.message = message
    }

    public var description: String {
        "\(instancePath.isEmpty ? "/" : instancePath): \(keyword): \(message)"
    }
}
