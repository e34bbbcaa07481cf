extension SluiceError.Code {
    // Codes of the schema registry, typed payloads and upcasting: not part of the envelope
    // table, but as stable as its codes, since tools and dead-letter headers carry them.

    /// A file or directory under `EventSchemas/` is misnamed, unreadable, not JSON, or not a
    /// JSON object; or the versions of a type have a gap. Refused at start-up.
    public static let schemaFileInvalid: Self = "SCHEMA_FILE_INVALID"
    /// The same (event type, version) was registered twice.
    public static let schemaDuplicate: Self = "SCHEMA_DUPLICATE"
    /// No chain of upcasters leads from the event's version to the version a handler accepts.
    public static let upcastPathMissing: Self = "UPCAST_PATH_MISSING"
    /// An upcaster threw, or produced data its target version's schema refuses.
    public static let upcastFailed: Self = "UPCAST_FAILED"
    /// A valid payload could not be decoded into the handler's payload type.
    public static let payloadDecodingFailed: Self = "PAYLOAD_DECODING_FAILED"
    /// A snapshot file line is not a valid snapshot record.
    public static let snapshotLineInvalid: Self = "SNAPSHOT_LINE_INVALID"
}

extension SluiceError.Code {
    /// Two upcasters were registered for the same event type and version.
    public static let upcasterDuplicate: Self = "UPCASTER_DUPLICATE"
}
