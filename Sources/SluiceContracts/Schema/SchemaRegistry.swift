import Foundation

/// The JSON Schemas of every event type and version a service knows, loaded once at start-up.
///
/// The registry is built from a directory laid out as the contract says,
/// `EventSchemas/<event_type>/v<N>.schema.json`, or in code with ``register(eventType:version:schema:source:)``.
/// Loading a directory is all-or-nothing: one bad file refuses the whole registry, with the
/// file and the reason, so a service never starts with half its schemas.
///
/// Directory rules (each broken one is `SCHEMA_FILE_INVALID` unless noted):
/// - every subdirectory is named by a valid event type (see ``EnvelopeRules/isValidEventType(_:)``)
///   and holds at least one schema;
/// - every file in it is named `v<N>.schema.json`, `N` a decimal integer ≥ 1 without leading
///   zeros;
/// - each file is a JSON object that the validator accepts (its own codes,
///   `SCHEMA_KEYWORD_UNSUPPORTED` or `SCHEMA_INVALID`, pass through with the file named);
/// - the versions of a type are contiguous (`v1, v2, v3`; a gap such as `v1, v3` is refused,
///   because compatibility checks and upcasters both step from `N` to `N + 1`). They may start
///   above 1, so old versions can be retired by deleting their files.
/// - Names starting with `.` and `*.md` files are ignored, so a README can sit beside schemas.
///
/// A registry built in code accepts any versions in any order; only duplicates are refused.
public struct SchemaRegistry: Sendable {
    /// One registered schema.
    public struct Entry: Sendable {
        /// The event type the schema describes.
        public var eventType: String
        /// The schema version (≥ 1).
        public var version: Int
        /// The compiled schema.
        public var schema: JSONSchema
        /// Where the schema came from: a file path, or a label for schemas built in code.
        public var source: String
    }

    /// Per type: versions sorted ascending. Few versions per type, so a scan beats a
    /// dictionary on the hot lookup path.
    private var entriesByType: [String: [Entry]] = [:]

    /// An empty registry.
    public init() {}

    /// Loads every schema under `directory`.
    ///
    /// - Parameter directory: the `EventSchemas` directory.
    /// - Throws: ``SluiceError`` naming the offending file and the reason; see the type's rules.
    public init(directory: String) throws(SluiceError) {
        let fileManager = FileManager.default
        var isDirectory: ObjCBool = false
        guard fileManager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue
        else {
            throw SluiceError(
                code: .schemaFileInvalid, message: "\(directory): not a directory of event schemas")
        }
        let typeNames: [String]
        do {
            typeNames = try fileManager.contentsOfDirectory(atPath: directory).sorted()
        } catch {
            throw SluiceError(
                code: .schemaFileInvalid, message: "\(directory): cannot be listed", underlying: error)
        }
        for typeName in typeNames where !Self.isIgnored(typeName) {
            let typePath = (directory as NSString).appendingPathComponent(typeName)
            guard fileManager.fileExists(atPath: typePath, isDirectory: &isDirectory), isDirectory.boolValue
            else {
                throw SluiceError(
                    code: .schemaFileInvalid,
                    message: "\(typePath): expected a directory named after an event type, found a file")
            }
            guard EnvelopeRules.isValidEventType(typeName) else {
                throw SluiceError(
                    code: .schemaFileInvalid,
                    message: "\(typePath): \"\(typeName)\" is not a valid event type "
                        + "(dotted lower-case past tense, e.g. billing.payment_authorized)")
            }
            try loadType(typeName, at: typePath)
        }
    }

    private mutating func loadType(_ eventType: String, at typePath: String) throws(SluiceError) {
        let fileNames: [String]
        do {
            fileNames = try FileManager.default.contentsOfDirectory(atPath: typePath).sorted()
        } catch {
            throw SluiceError(
                code: .schemaFileInvalid, message: "\(typePath): cannot be listed", underlying: error)
        }
        var versions: [Int] = []
        for fileName in fileNames where !Self.isIgnored(fileName) {
            let filePath = (typePath as NSString).appendingPathComponent(fileName)
            guard let version = Self.version(fromFileName: fileName) else {
                throw SluiceError(
                    code: .schemaFileInvalid,
                    message: "\(filePath): schema files must be named v<N>.schema.json with N ≥ 1")
            }
            let document = try Self.readDocument(at: filePath)
            let schema: JSONSchema
            do throws(SluiceError) {
                schema = try JSONSchema(document, source: filePath)
            } catch {
                throw SluiceError(
                    code: error.code, message: "\(filePath): \(error.message)", path: error.path,
                    underlying: error)
            }
            try register(eventType: eventType, version: version, schema: schema, source: filePath)
            versions.append(version)
        }
        versions.sort()
        guard let first = versions.first, let last = versions.last else {
            throw SluiceError(code: .schemaFileInvalid, message: "\(typePath): holds no schema file")
        }
        if last - first + 1 != versions.count {
            let missing = Set(first...last).subtracting(versions).sorted().map { "v\($0)" }
            throw SluiceError(
                code: .schemaFileInvalid,
                message: "\(typePath): versions must be contiguous; missing "
                    + missing.joined(separator: ", "))
        }
    }

    private static func isIgnored(_ name: String) -> Bool {
        name.hasPrefix(".") || name.hasSuffix(".md")
    }

    /// `v12.schema.json` → 12; `nil` for anything else (including `v0` and `v01`).
    static func version(fromFileName name: String) -> Int? {
        guard name.hasPrefix("v"), name.hasSuffix(".schema.json") else { return nil }
        let digits = name.dropFirst().dropLast(".schema.json".count)
        guard !digits.isEmpty, digits.count <= 9, digits.first != "0",
            digits.allSatisfy({ $0.isASCII && $0.isNumber }), let version = Int(digits)
        else { return nil }
        return version
    }

    private static func readDocument(at path: String) throws(SluiceError) -> JSONValue {
        let bytes: [UInt8]
        do {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        } catch {
            throw SluiceError(code: .schemaFileInvalid, message: "\(path): cannot be read", underlying: error)
        }
        let document: JSONValue
        do throws(JSONParseError) {
            document = try JSONParser.parse(bytes)
        } catch {
            throw SluiceError(
                code: .schemaFileInvalid,
                message: "\(path): not valid JSON at byte \(error.offset): \(error.message)",
                underlying: error)
        }
        guard case .object = document else {
            throw SluiceError(
                code: .schemaFileInvalid, message: "\(path): a schema file must hold a JSON object", path: "")
        }
        return document
    }

    /// Registers `schema` as `version` of `eventType`.
    ///
    /// - Throws: `ENVELOPE_FIELD_INVALID` for an invalid event type or a version below 1,
    ///   `SCHEMA_DUPLICATE` when that version is already registered.
    public mutating func register(
        eventType: String, version: Int, schema: JSONSchema, source: String? = nil
    ) throws(SluiceError) {
        guard EnvelopeRules.isValidEventType(eventType) else {
            throw SluiceError(
                code: .envelopeFieldInvalid, message: "\"\(eventType)\" is not a valid event type")
        }
        guard version >= 1 else {
            throw SluiceError(code: .envelopeFieldInvalid, message: "schema versions start at 1, got \(version)")
        }
        var entries = entriesByType[eventType, default: []]
        if entries.contains(where: { $0.version == version }) {
            throw SluiceError(
                code: .schemaDuplicate, message: "\(eventType) v\(version) is registered twice")
        }
        entries.append(
            Entry(
                eventType: eventType, version: version, schema: schema,
                source: source ?? "\(eventType)/v\(version)"))
        entries.sort { $0.version < $1.version }
        entriesByType[eventType] = entries
    }

    /// Registers a schema given as a JSON document.
    ///
    /// - Throws: the validator's error for a schema it refuses, or as
    ///   ``register(eventType:version:schema:source:)``.
    public mutating func register(
        eventType: String, version: Int, document: JSONValue, source: String? = nil
    ) throws(SluiceError) {
        let source = source ?? "\(eventType)/v\(version)"
        let schema = try JSONSchema(document, source: source)
        try register(eventType: eventType, version: version, schema: schema, source: source)
    }

    /// Registers a schema given as JSON text.
    ///
    /// - Throws: `SCHEMA_FILE_INVALID` when the text is not a JSON object, otherwise as
    ///   ``register(eventType:version:document:source:)``.
    public mutating func register(
        eventType: String, version: Int, schemaText: String, source: String? = nil
    ) throws(SluiceError) {
        let label = source ?? "\(eventType)/v\(version)"
        let document: JSONValue
        do throws(JSONParseError) {
            document = try JSONParser.parse(schemaText)
        } catch {
            throw SluiceError(
                code: .schemaFileInvalid, message: "\(label): not valid JSON: \(error)", underlying: error)
        }
        guard case .object = document else {
            throw SluiceError(code: .schemaFileInvalid, message: "\(label): a schema must be a JSON object", path: "")
        }
        try register(eventType: eventType, version: version, document: document, source: label)
    }

    /// The schema of `version` of `eventType`.
    ///
    /// - Throws: `EVENT_TYPE_UNKNOWN` (path `/event_type`) when no version of the type is
    ///   registered, `SCHEMA_VERSION_UNSUPPORTED` (path `/schema_version`) when that version is not.
    public func schema(for eventType: String, version: Int) throws(SluiceError) -> JSONSchema {
        try entry(for: eventType, version: version).schema
    }

    /// The registered entry of `version` of `eventType`; throws as ``schema(for:version:)``.
    public func entry(for eventType: String, version: Int) throws(SluiceError) -> Entry {
        guard let entries = entriesByType[eventType] else {
            throw SluiceError(
                code: .eventTypeUnknown, message: "no schema is registered for event type \(eventType)",
                path: "/event_type")
        }
        for entry in entries where entry.version == version { return entry }
        let known = entries.map { "v\($0.version)" }.joined(separator: ", ")
        throw SluiceError(
            code: .schemaVersionUnsupported,
            message: "\(eventType) has no schema version \(version) (registered: \(known))",
            path: "/schema_version")
    }

    /// Every registered event type, sorted.
    public var eventTypes: [String] { entriesByType.keys.sorted() }

    /// The registered versions of `eventType`, ascending; empty for an unknown type.
    public func versions(of eventType: String) -> [Int] {
        entriesByType[eventType, default: []].map(\.version)
    }

    /// The registered entries of `eventType`, ascending by version.
    public func entries(of eventType: String) -> [Entry] {
        entriesByType[eventType, default: []]
    }

    /// The newest registered version of `eventType`, or `nil` for an unknown type.
    public func newestVersion(of eventType: String) -> Int? {
        entriesByType[eventType]?.last?.version
    }

    /// The newest registered version of every type.
    public var newestVersions: [String: Int] {
        entriesByType.compactMapValues { $0.last?.version }
    }
}
