/// A JSON Schema (draft 2020-12), compiled once and then used to validate many instances.
///
/// Supported: `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`,
/// `patternProperties`, `items`, `prefixItems`, `contains`, `minContains`, `maxContains`,
/// `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`,
/// `maxLength`, `pattern`, `minItems`, `maxItems`, `uniqueItems`, `minProperties`,
/// `maxProperties`, `dependentRequired`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else`,
/// `$ref` within the document, `$defs`, `format` (an annotation: never asserted), and the
/// annotations `$schema`, `$id` (at the root), `$comment`, `title`, `description`, `default`,
/// `examples`, `deprecated`, `readOnly`, `writeOnly`, `contentMediaType`, `contentEncoding`,
/// `contentSchema`. Boolean schemas are supported.
///
/// Any other keyword, a nested `$id`, or a `$ref` to another document is refused when the schema
/// is compiled (``SluiceError/Code/schemaKeywordUnsupported``), so a schema never promises a check
/// that is not made.
public struct JSONSchema: Sendable {
    /// The schema document as written.
    public let document: JSONValue
    /// Where the schema came from (a file path), for errors.
    public let source: String
    private let nodes: [SchemaNode]

    /// Compiles `document`.
    ///
    /// - Throws: ``SluiceError`` with ``SluiceError/Code/schemaKeywordUnsupported`` (naming the
    ///   keyword, the source and, in `path`, where it is) or ``SluiceError/Code/schemaInvalid``.
    public init(_ document: JSONValue, source: String) throws(SluiceError) {
        self.document = document
        self.source = source
        var compiler = SchemaCompiler(document: document, source: source)
        self.nodes = try compiler.compile()
    }

    /// Every violation of the schema by `instance`; empty when it is valid.
    public func validate(_ instance: JSONValue) -> [SchemaViolation] {
        // Most instances are valid: answer those with the cheap pass, which builds no paths.
        if isValid(instance) { return [] }
        var violations: [SchemaViolation] = []
        var evaluator = SchemaEvaluator(nodes: nodes, collect: true)
        _ = evaluator.evaluate(0, instance, instancePath: "", violations: &violations)
        return violations
    }

    /// Whether `instance` is valid (stops at the first violation).
    public func isValid(_ instance: JSONValue) -> Bool {
        var ignored: [SchemaViolation] = []
        var evaluator = SchemaEvaluator(nodes: nodes, collect: false)
        return evaluator.evaluate(0, instance, instancePath: "", violations: &ignored)
    }
}

/// One compiled (sub)schema. Children are indices into the schema's node table, so `$ref` cycles
/// are just indices too.
struct SchemaNode: Sendable {
    enum TypeName: String, Sendable { case null, boolean, object, array, number, string, integer }

    var path: String
    var alwaysValid: Bool?
    var types: [TypeName]?
    var enumValues: [JSONValue]?
    var constValue: JSONValue?
    var properties: [(name: String, node: Int)] = []
    var patternProperties: [(pattern: SchemaPattern, node: Int)] = []
    var additionalProperties: Int?
    var required: [String] = []
    var dependentRequired: [(name: String, required: [String])] = []
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
    var ref: Int?
}
