extension SluiceError.Code {
    /// A schema uses a keyword outside the supported draft 2020-12 subset, or refers to another
    /// document. The message names the keyword and the schema's source; the path points at it.
    public static let schemaKeywordUnsupported: Self = "SCHEMA_KEYWORD_UNSUPPORTED"
    /// A schema is malformed: a keyword with a value of the wrong kind, a `$ref` that resolves
    /// nowhere, an invalid regular expression, a `$ref` cycle that never reaches the instance.
    public static let schemaInvalid: Self = "SCHEMA_INVALID"
}
