/// Brings an event's `data` up to the version a handler accepts, through registered
/// ``Upcaster``s, and decodes it into the handler's payload type.
///
/// A handler declares the newest version it understands; events written at an older version
/// are upcast one step at a time (`v1 → v2 → v3`). Each step's output is validated against the
/// schema of the version it claims to be, so a handler only ever sees data valid at its version.
public struct UpcasterChain: Sendable {
    private struct Key: Hashable {
        var eventType: String
        var fromVersion: Int
    }

    /// The schemas every step's output is validated against.
    public let registry: SchemaRegistry
    private var upcasters: [Key: Upcaster] = [:]
    private let payloadDecoder = JSONValueDecoder()

    /// Creates a chain.
    ///
    /// - Throws: as ``register(_:)`` for each upcaster.
    public init(registry: SchemaRegistry, upcasters: [Upcaster] = []) throws(SluiceError) {
        self.registry = registry
        for upcaster in upcasters { try register(upcaster) }
    }

    /// Adds an upcaster.
    ///
    /// - Throws: `UPCASTER_DUPLICATE` when one is already registered for the same type and
    ///   version; `EVENT_TYPE_UNKNOWN` / `SCHEMA_VERSION_UNSUPPORTED` when the registry lacks the
    ///   version it reads or the one it writes (caught at start-up rather than on the first event).
    public mutating func register(_ upcaster: Upcaster) throws(SluiceError) {
        _ = try registry.entry(for: upcaster.eventType, version: upcaster.fromVersion)
        _ = try registry.entry(for: upcaster.eventType, version: upcaster.toVersion)
        let key = Key(eventType: upcaster.eventType, fromVersion: upcaster.fromVersion)
        guard upcasters[key] == nil else {
            throw SluiceError(
                code: .upcasterDuplicate,
                message: "an upcaster from \(upcaster.eventType) v\(upcaster.fromVersion) is already registered")
        }
        upcasters[key] = upcaster
    }

    /// Whether `envelope` can be brought to `targetVersion`.
    public func canUpcast(_ eventType: String, from version: Int, to targetVersion: Int) -> Bool {
        guard version <= targetVersion else { return false }
        for step in version..<targetVersion
        where upcasters[Key(eventType: eventType, fromVersion: step)] == nil {
            return false
        }
        return true
    }

    /// The envelope's `data` at `targetVersion`.
    ///
    /// - Returns: `data` unchanged when the envelope is already at `targetVersion`.
    /// - Throws: `UPCAST_PATH_MISSING` (path `/schema_version`) when the envelope is newer than
    ///   `targetVersion` or a step has no upcaster; `UPCAST_FAILED` when an upcaster throws or
    ///   its output is invalid at its version (path under `/data`). Never retryable.
    public func upcast(_ envelope: Envelope, to targetVersion: Int) throws(SluiceError) -> JSONValue {
        let eventType = envelope.eventType
        guard envelope.schemaVersion <= targetVersion else {
            throw SluiceError(
                code: .upcastPathMissing,
                message: "\(eventType) v\(envelope.schemaVersion) is newer than v\(targetVersion), "
                    + "the newest version the handler accepts; upcasters only go forward",
                path: "/schema_version")
        }
        var data = envelope.data
        for step in envelope.schemaVersion..<targetVersion {
            guard let upcaster = upcasters[Key(eventType: eventType, fromVersion: step)] else {
                throw SluiceError(
                    code: .upcastPathMissing,
                    message: "no upcaster from \(eventType) v\(step) to v\(step + 1), so "
                        + "v\(envelope.schemaVersion) cannot reach v\(targetVersion)",
                    path: "/schema_version")
            }
            do {
                data = try upcaster.upcast(data)
            } catch let error as SluiceError {
                throw error
            } catch {
                throw SluiceError(
                    code: .upcastFailed, message: "the upcaster from \(eventType) v\(step) threw: \(error)",
                    path: "/data", underlying: error)
            }
            let schema = try registry.schema(for: eventType, version: step + 1)
            if let violation = schema.validate(data).first {
                throw SluiceError(
                    code: .upcastFailed,
                    message: "the upcaster from \(eventType) v\(step) produced data that is not valid "
                        + "at v\(step + 1): \(violation.message)",
                    path: "/data" + violation.instancePath)
            }
        }
        return data
    }

    /// Upcasts the envelope to `version` and decodes its `data` as `Payload`.
    ///
    /// - Parameters:
    ///   - envelope: a decoded envelope.
    ///   - type: the handler's payload type (snake_case members need `CodingKeys`; see
    ///     ``JSONValueDecoder``).
    ///   - version: the newest version the handler accepts; `nil` means the newest registered.
    /// - Throws: as ``upcast(_:to:)``, and `PAYLOAD_DECODING_FAILED` (path under `/data`) when
    ///   the data does not fit `Payload`.
    public func event<Payload: Decodable & Sendable>(
        _ envelope: Envelope, as type: Payload.Type, version: Int? = nil
    ) throws(SluiceError) -> Event<Payload> {
        let targetVersion = version ?? registry.newestVersion(of: envelope.eventType) ?? envelope.schemaVersion
        let data = try upcast(envelope, to: targetVersion)
        do {
            let payload = try payloadDecoder.decode(type, from: data)
            return Event(envelope: envelope, schemaVersion: targetVersion, payload: payload)
        } catch {
            throw Self.decodingError(error, eventType: envelope.eventType, version: targetVersion, type: type)
        }
    }

    private static func decodingError(
        _ error: any Error, eventType: String, version: Int, type: Any.Type
    ) -> SluiceError {
        var codingPath: [any CodingKey] = []
        var reason = String(describing: error)
        if let decodingError = error as? DecodingError {
            switch decodingError {
            case .typeMismatch(_, let context), .valueNotFound(_, let context), .dataCorrupted(let context):
                codingPath = context.codingPath
                reason = context.debugDescription
            case .keyNotFound(let key, let context):
                codingPath = context.codingPath + [key]
                reason = context.debugDescription
            @unknown default:
                break
            }
        }
        let pointer = codingPath.map { "/" + EnvelopePath.escape($0.stringValue) }.joined()
        return SluiceError(
            code: .payloadDecodingFailed,
            message: "\(eventType) v\(version) data does not decode as \(type): \(reason)",
            path: "/data" + pointer, underlying: error)
    }
}
