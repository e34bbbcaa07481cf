import Foundation
import Logging
import PostgresNIO
import Sluice
import Synchronization
import Testing

@testable import SluicePostgres

/// A fresh, uniquely named database on the test server (`SLUICE_TEST_POSTGRES_URL`, which
/// `scripts/test.sh` starts), dropped after the test with every store opened on it.
final class PostgresTestDatabase: Sendable {
    /// Whether PostgreSQL tests are to be left out (`SLUICE_SKIP_POSTGRES=1`); otherwise a missing
    /// server fails them.
    static let isSkipped = ProcessInfo.processInfo.environment["SLUICE_SKIP_POSTGRES"] == "1"

    struct ServerMissing: Error, CustomStringConvertible {
        var description: String {
            "SLUICE_TEST_POSTGRES_URL is not set: run the tests through scripts/test.sh, or start a server with "
                + "`export SLUICE_TEST_POSTGRES_URL=$(scripts/postgres-test-server.sh start)`; "
                + "set SLUICE_SKIP_POSTGRES=1 to leave the PostgreSQL tests out"
        }
    }

    static let logger = Logger(label: "sluice.tests.postgres", factory: { _ in SwiftLogNoOpLogHandler() })

    /// The server's URL, or a failure saying how to provide one.
    static func serverURL() throws -> String {
        guard let url = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty else {
            throw ServerMissing()
        }
        return url
    }

    let name: String
    let url: String
    private let server: PostgresStoreLocation
    private let stores = Mutex<[PostgresDedupeStore]>([])

    private init(server: PostgresStoreLocation, name: String) {
        self.server = server
        self.name = name
        var url = "postgres://\(server.username)"
        if let password = server.password {
            url += ":" + (password.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? password)
        }
        url += "@\(server.host):\(server.port)/\(name)?sslmode=disable"
        self.url = url
    }

    /// Runs `body` with a fresh database, then closes its stores and drops it.
    static func with(_ body: (PostgresTestDatabase) async throws -> Void) async throws {
        let server = try PostgresStoreLocation(url: try serverURL())
        let database = PostgresTestDatabase(
            server: server, name: "sluice_t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: ""))
        try await database.admin("CREATE DATABASE \(database.name)")
        do {
            try await body(database)
        } catch {
            await database.drop()
            throw error
        }
        await database.drop()
    }

    /// Opens a store on this database; it is closed when the test ends.
    @Sendable
    func open(_ migrations: [StoreMigration]) async throws -> PostgresDedupeStore {
        let store = try await PostgresDedupeStore.open(url: url, migrations: migrations, poolSize: 4, logger: Self.logger)
        stores.withLock { $0.append(store) }
        return store
    }

    private func drop() async {
        for store in stores.withLock({ $0 }) { await store.close() }
        do {
            try await admin("DROP DATABASE IF EXISTS \(name) WITH (FORCE)")
        } catch {
            Issue.record("could not drop the test database \(name): \(error)")
        }
    }

    /// Runs a statement outside any transaction on the server's own database.
    private func admin(_ sql: String) async throws {
        let configuration = PostgresConnection.Configuration(
            host: server.host, port: server.port, username: server.username, password: server.password,
            database: server.database, tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: Self.logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: sql), logger: Self.logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
    }
}
