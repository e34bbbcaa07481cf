import Logging
import Sluice

/// What a consumer service tells Sluice's commands: its handlers, its schemas and its store.
///
/// A service mounts ``RunCommand`` and ``ReplayCommand`` in its own executable, parameterized
/// with its definition:
///
/// ```swift
/// enum Fulfillment: ConsumerServiceDefinition { … }
///
/// @main
/// struct FulfillmentCommand: AsyncParsableCommand {
///     static let configuration = CommandConfiguration(
///         subcommands: [RunCommand<Fulfillment>.self, ReplayCommand<Fulfillment>.self])
/// }
/// ```
public protocol ConsumerServiceDefinition: Sendable {
    /// The store handlers run in.
    associatedtype Store: DedupeStore

    /// Where `EventSchemas/` is, unless `--schemas` says otherwise. Default: `EventSchemas`.
    static var schemasDirectory: String { get }

    /// Upcasters from older schema versions to newer ones. Default: none.
    static func upcasters() -> [Upcaster]

    /// The service's handlers.
    static func router() -> EventRouter<Store.Transaction>

    /// The service's own tables: applied by the store at start-up, each once, after the
    /// store's own. Default: none.
    static func migrations() -> [StoreMigration]

    /// Opens the store named by `--database` (a SQLite path or a `postgres://` URL). Services
    /// whose `Store` is `SQLDedupeStore` get it for free.
    static func openStore(database: String, logger: Logger) async throws -> Store
}

extension ConsumerServiceDefinition {
    /// `EventSchemas`, relative to the working directory.
    public static var schemasDirectory: String { "EventSchemas" }
    /// None: every handler takes the schema version its events arrive in.
    public static func upcasters() -> [Upcaster] { [] }
    /// None: the service keeps no tables of its own.
    public static func migrations() -> [StoreMigration] { [] }
}

extension ConsumerServiceDefinition where Store == SQLDedupeStore {
    /// Opens `--database` as a ``SQLDedupeStore``, applying ``migrations()``.
    public static func openStore(database: String, logger: Logger) async throws -> SQLDedupeStore {
        try await SQLDedupeStore.open(DatabaseLocation(parsing: database), migrations: migrations(), logger: logger)
    }
}
