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

/// A PostgreSQL server of its own for one outage test (`scripts/postgres-test-server.sh` with a
/// state file of its own): crashed with `pg_ctl stop -m immediate` and resumed on the same port and
/// data directory without disturbing the test command's server.
final class OutagePostgresServer: Sendable {
    let url: String
    private let stateFile: String

    private static var script: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("scripts/postgres-test-server.sh").path
    }

    private init(url: String, stateFile: String) {
        self.url = url
        self.stateFile = stateFile
    }

    /// Starts a durable server (`SLUICE_POSTGRES_DURABLE=1`: synchronous_commit on), so that a
    /// crash loses no commit it acknowledged; the default test server's synchronous_commit=off
    /// would lose the last ones, which a test would take for lost effects.
    static func start() throws -> OutagePostgresServer {
        let stateFile = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-outage-\(UUID().uuidString).state").path
        let url = try run("start", stateFile: stateFile).trimmingCharacters(in: .whitespacesAndNewlines)
        return OutagePostgresServer(url: url, stateFile: stateFile)
    }

    /// Stops the server at once, as a crash would: its connections drop mid-statement.
    func crash() throws { try Self.run("crash", stateFile: stateFile) }
    /// Starts the crashed server again on the same port and data directory.
    func resume() throws { try Self.run("resume", stateFile: stateFile) }
    /// Stops the server and deletes its data.
    func stop() { _ = try? Self.run("stop", stateFile: stateFile) }

    struct ScriptFailed: Error, CustomStringConvertible {
        var command: String
        var status: Int32
        var description: String { "scripts/postgres-test-server.sh \(command) exited with \(status)" }
    }

    /// Runs the script with `command` and returns what it printed, spawned and waited for
    /// directly: Foundation's `Process` did not see the script exit (it stayed a zombie) once the
    /// server it starts was running.
    @discardableResult
    private static func run(_ command: String, stateFile: String) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-outage-\(UUID().uuidString).out")
        defer { try? FileManager.default.removeItem(at: output) }
        let shell = "SLUICE_POSTGRES_DURABLE=1 SLUICE_POSTGRES_STATE_FILE='\(stateFile)' exec /bin/bash '\(script)' \(command) >'\(output.path)' </dev/null"
        let arguments = ["/bin/sh", "-c", shell]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, &argv, environ)
        guard spawned == 0 else { throw ScriptFailed(command: command, status: spawned) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            guard errno == EINTR else { break }
        }
        let exitStatus = (status >> 8) & 0xff  // WEXITSTATUS
        guard exitStatus == 0 else { throw ScriptFailed(command: command, status: exitStatus) }
        return (try? String(contentsOf: output, encoding: .utf8)) ?? ""
    }
}
