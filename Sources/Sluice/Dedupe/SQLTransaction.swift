/// A value bound to, or read from, a SQL statement: the types SQLite and PostgreSQL share.
///
/// Literals work where a value is expected: `[42, "EUR", nil, 1.5]`.
public enum SQLValue: Sendable, Hashable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)
    case blob([UInt8])

    /// The value as an integer, when it is one (a whole real number counts).
    public var int64: Int64? {
        switch self {
        case .integer(let value): value
        case .real(let value): Int64(exactly: value)
        default: nil
        }
    }

    /// The value as an `Int`, when it is an integer that fits.
    public var int: Int? { int64.flatMap { Int(exactly: $0) } }

    /// The value as a floating-point number, when it is numeric.
    public var double: Double? {
        switch self {
        case .integer(let value): Double(value)
        case .real(let value): value
        default: nil
        }
    }

    /// The value as text, when it is text.
    public var string: String? {
        if case .text(let value) = self { return value }
        return nil
    }

    /// The value as bytes, when it is a blob.
    public var bytes: [UInt8]? {
        if case .blob(let value) = self { return value }
        return nil
    }

    /// Whether the value is SQL `NULL`.
    public var isNull: Bool { self == .null }
}

extension SQLValue: ExpressibleByIntegerLiteral, ExpressibleByFloatLiteral, ExpressibleByStringLiteral,
    ExpressibleByNilLiteral, ExpressibleByBooleanLiteral
{
    public init(integerLiteral value: Int64) { self = .integer(value) }
    public init(floatLiteral value: Double) { self = .real(value) }
    public init(stringLiteral value: String) { self = .text(value) }
    public init(nilLiteral: ()) { self = .null }
    /// Booleans are stored as the integers 0 and 1 in both dialects.
    public init(booleanLiteral value: Bool) { self = .integer(value ? 1 : 0) }
}

extension SQLValue {
    /// An integer value.
    public init(_ value: Int) { self = .integer(Int64(value)) }
    /// A text value, or `NULL` for `nil`.
    public init(_ value: String?) { self = value.map(SQLValue.text) ?? .null }
}

/// One row of a query result: values by column position or name.
public struct SQLRow: Sendable, Hashable {
    /// The column names, in the query's order.
    public let columns: [String]
    /// The values, one per column.
    public let values: [SQLValue]

    /// A row; `values` holds one value per column, in the order of `columns`.
    public init(columns: [String], values: [SQLValue]) {
        precondition(columns.count == values.count, "a row needs one value per column")
        self.columns = columns
        self.values = values
    }

    /// The value of the first column named `column` (compared case-insensitively, as SQL does),
    /// or `nil` when the row has no such column.
    public subscript(_ column: String) -> SQLValue? {
        let lowered = column.lowercased()
        guard let index = columns.firstIndex(where: { $0.lowercased() == lowered }) else { return nil }
        return values[index]
    }

    /// The value at column position `index`.
    public subscript(_ index: Int) -> SQLValue { values[index] }
}

/// The SQL a store speaks.
public enum SQLDialect: String, Sendable, Hashable {
    case sqlite
    case postgresql
}

/// A store transaction a handler can write its own state through with SQL, the same way on
/// SQLite and on PostgreSQL.
///
/// Statements use `?` placeholders in both dialects (the PostgreSQL store numbers them). Keep to
/// SQL both databases accept, or branch on ``dialect``; a store's own type gives the native
/// connection for anything more.
///
/// ```swift
/// router.on("billing.payment_authorized", as: Payment.self, handler: "balances") { event, context in
///     try await context.transaction.execute(
///         "UPDATE balances SET cents = cents + ? WHERE account = ?",
///         [.integer(event.payload.amountCents), .text(event.payload.account)])
/// }
/// ```
public protocol SQLTransaction: DedupeTransaction {
    /// Which SQL this transaction speaks.
    var dialect: SQLDialect { get }

    /// Runs a statement that returns no rows; returns how many rows it changed.
    @discardableResult
    func execute(_ sql: String, _ arguments: [SQLValue]) async throws -> Int

    /// Runs a query and returns its rows.
    func query(_ sql: String, _ arguments: [SQLValue]) async throws -> [SQLRow]
}

extension SQLTransaction {
    /// Runs a statement without arguments; returns how many rows it changed.
    @discardableResult
    public func execute(_ sql: String) async throws -> Int { try await execute(sql, []) }

    /// Runs a query without arguments.
    public func query(_ sql: String) async throws -> [SQLRow] { try await query(sql, []) }
}

/// A versioned change to a store's database schema: how a service creates and changes its
/// handlers' own tables.
///
/// Stores apply the migrations they are given at start-up, after their own, in order, each once,
/// inside one exclusive transaction per start (SQLite `BEGIN IMMEDIATE`, a PostgreSQL advisory
/// lock), so processes starting at once against a fresh database neither race nor fail. A
/// migration's identifier is recorded when it is applied; never change an applied migration,
/// add a new one.
///
/// ```swift
/// let migrations = [
///     StoreMigration(id: "orders-1-ledger", sql: """
///         CREATE TABLE order_ledger (order_id TEXT PRIMARY KEY, status TEXT NOT NULL, cents BIGINT NOT NULL)
///         """),
/// ]
/// ```
public struct StoreMigration: Sendable, Hashable {
    /// A unique, stable name (recorded once applied).
    public var id: String
    /// The script for SQLite (may hold several statements separated by `;`).
    public var sqlite: String
    /// The script for PostgreSQL (may hold several statements separated by `;`).
    public var postgresql: String

    /// A migration whose SQL both databases accept.
    public init(id: String, sql: String) {
        self.init(id: id, sqlite: sql, postgresql: sql)
    }

    /// A migration with a script per dialect.
    public init(id: String, sqlite: String, postgresql: String) {
        self.id = id
        self.sqlite = sqlite
        self.postgresql = postgresql
    }

    /// The script for `dialect`.
    public func script(for dialect: SQLDialect) -> String {
        switch dialect {
        case .sqlite: sqlite
        case .postgresql: postgresql
        }
    }
}

extension SluiceError.Code {
    /// A store migration failed; the store did not open.
    public static let storeMigrationFailed: Self = "STORE_MIGRATION_FAILED"
    /// The database refused a statement (a syntax error, a constraint of the handler's own
    /// tables); not retriable.
    public static let storeStatementFailed: Self = "STORE_STATEMENT_FAILED"
    /// The `--database` value is neither a SQLite path nor a `postgres://` URL the store accepts.
    public static let storeLocationInvalid: Self = "STORE_LOCATION_INVALID"
}
