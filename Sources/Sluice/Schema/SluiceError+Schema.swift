extension SluiceError.Code {
    /// A schema uses a keyword (or a kind of `$ref`) the validator does not implement. Refused at
    /// load rather than silently ignored, so a schema never promises what is not checked.
    public static let schemaKeywordUnsupported: Self = "SCHEMA_KEYWORD_UNSUPPORTED"
    /// A schema is malformed: a keyword with a value of the wrong kind, a `$ref` that resolves
    /// nowhere, a pattern that is not a regular expression.
    public static let schemaInvalid: Self = "SCHEMA_INVALID"
}
