/// A compiled JSON Schema (draft 2020-12, the contract's subset) that validates ``JSONValue``s.
///
/// The schema is compiled once, at load: every keyword is checked and decoded, regular
/// expressions are compiled, and `$ref`s are resolved to nodes, so validating an instance never
/// re-reads the schema's JSON. A compiled schema is immutable and can be shared across tasks.
///
/// Supported: `type`, `enum`, `const`, `properties`, `required`, `additionalProperties`,
/// `patternProperties`, `items`, `prefixItems`, `contains`, `minContains`, `maxContains`,
/// `minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`, `multipleOf`, `minLength`,
/// `maxLength` (in Unicode code points), `pattern`, `minItems`, `maxItems`, `uniqueItems`,
/// `minProperties`, `maxProperties`, `dependentRequired`, `allOf`, `anyOf`, `oneOf`, `not`,
/// `if`/`then`/`else`, `$ref` and `$defs` within the document, boolean schemas, and the
/// annotations `$schema`, `$id` (the root's only), `$comment`, `title`, `description`,
/// `default`, `examples`, `deprecated`, `readOnly`, `writeOnly`, `format` (never asserts),
/// `contentMediaType`, `contentEncoding` and `contentSchema`.
///
/// Any other keyword is refused at load with `SCHEMA_KEYWORD_UNSUPPORTED`, as is a `$ref` to
/// another document or an anchor; a malformed schema is refused with `SCHEMA_INVALID`. Refusing
/// beats ignoring: a keyword the validator skipped would let invalid payloads through.
public struct JSONSchema: Sendable {
    /// The schema document as given.
    public let document: JSONValue
    private let nodes: [SchemaNode]

    /// Compiles a schema document.
    ///
    /// - Parameters:
    ///   - document: The schema, an object or a boolean.
    ///   - source: Where the schema came from (usually its file path), named in every error.
    /// - Throws: ``SluiceError`` with code `SCHEMA_KEYWORD_UNSUPPORTED` or `SCHEMA_INVALID`,
    ///   whose ``SluiceError/path`` is the JSON pointer of the offending keyword in the schema.
    public init(_ document: JSONValue, source: String) throws(SluiceError) {
        var compiler = SchemaCompiler(document: document, source: source)
        self.nodes = try compiler.compile()
        self.document = document
    }

    /// Every way `instance` fails the schema; empty when it is valid.
    ///
    /// For `anyOf`, `oneOf`, `not` and `contains`, which fail as a whole, one violation names
    /// the keyword rather than listing every branch's failures.
    public func validate(_ instance: JSONValue) -> [SchemaViolation] {
        // Most instances are valid: answer those with the pass that builds no paths or messages.
        if isValid(instance) { return [] }
        return nodes.withUnsafeBufferPointer { nodes in
            var evaluator = SchemaEvaluator(nodes: nodes, collecting: true)
            _ = evaluator.evaluate(0, instance)
            return evaluator.violations
        }
    }

    /// Whether `instance` is valid; faster than ``validate(_:)``, as it stops at the first failure
    /// and builds no paths or messages.
    public func isValid(_ instance: JSONValue) -> Bool {
        nodes.withUnsafeBufferPointer { nodes in
            var evaluator = SchemaEvaluator(nodes: nodes, collecting: false)
            return evaluator.evaluate(0, instance)
        }
    }
}
