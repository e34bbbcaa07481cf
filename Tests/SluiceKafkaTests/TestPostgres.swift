import Foundation
import Logging
import PostgresNIO

/// The PostgreSQL server the test command started (`scripts/test.sh` exports its URL as
/// `SLUICE_TEST_POSTGRES_URL`). Tests that need PostgreSQL run when it is set; the store's own
/// suite (SluiceStoreTests) fails when it is missing, so CI cannot silently skip PostgreSQL.
enum TestPostgres {
    static var url: String? {
        guard ProcessInfo.processInfo.environment["SLUICE_SKIP_POSTGRES"] != "1" else { return nil }
        return ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"].flatMap { $0.isEmpty ? nil : $0 }
    }

    static var isConfigured: Bool { url != nil }

    struct NotConfigured: Error, CustomStringConvertible {
        var description: String { "SLUICE_TEST_POSTGRES_URL is not set (run the tests through scripts/test.sh)" }
    }

    /// Creates a uniquely named database on the server and returns its URL. Databases are left
    /// for the server's deletion at the end of the test run (the server lives in a temporary
    /// directory).
    static func freshDatabaseURL(server: String? = nil) async throws -> String {
        guard let url = server ?? url, let components = URLComponents(string: url), let host = components.host else { throw NotConfigured() }
        let name = "sluice_k_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let user = components.user ?? "postgres"
        let logger = Logger(label: "sluice.tests.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
        let configuration = PostgresConnection.Configuration(
            host: host, port: components.port ?? 5432, username: user, password: components.password,
            database: String(components.path.dropFirst()).isEmpty ? user : String(components.path.dropFirst()), tls: .disable)
        let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
        do {
            try await connection.query(PostgresQuery(unsafeSQL: "CREATE DATABASE \(name)"), logger: logger)
        } catch {
            try? await connection.close()
            throw error
        }
        try await connection.close()
        var fresh = components
        fresh.path = "/" + name
        fresh.query = "sslmode=disable"
        return fresh.string ?? url
    }
}

