import Foundation

/// The PostgreSQL server the test command started (`scripts/test.sh` exports its URL).
enum TestPostgres {
    static var url: String? { ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"] }
    static var isConfigured: Bool { url != nil }

    static func freshDatabaseURL() async throws -> String {
        struct NotConfigured: Error {}
        throw NotConfigured()
    }
}
