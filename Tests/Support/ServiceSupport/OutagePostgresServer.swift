import Foundation

/// A PostgreSQL server of its own for one outage test (`scripts/postgres-test-server.sh` with a
/// state file of its own): it can be crashed (`pg_ctl stop -m immediate`) and resumed on the same
/// port and data directory without disturbing the test command's server. Shared by the store's
/// outage tests and the service-level ones.
public final class OutagePostgresServer: Sendable {
    /// The server's URL, as the script printed it.
    public let url: String
    private let stateFile: String

    private static var script: String {
        // Tests/Support/ServiceSupport/<this file> → the repository's scripts/.
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("scripts/postgres-test-server.sh").path
    }

    private init(url: String, stateFile: String) {
        self.url = url
        self.stateFile = stateFile
    }

    /// Starts a durable server (`SLUICE_POSTGRES_DURABLE=1`: synchronous_commit on), so that a
    /// crash loses no commit it acknowledged; the default test server's synchronous_commit=off
    /// would lose the last ones, which a test would take for lost effects.
    public static func start() throws -> OutagePostgresServer {
        let stateFile = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-outage-\(UUID().uuidString).state").path
        let url = try run("start", stateFile: stateFile).trimmingCharacters(in: .whitespacesAndNewlines)
        return OutagePostgresServer(url: url, stateFile: stateFile)
    }

    /// Stops the server at once, as a crash would: its connections drop mid-statement.
    public func crash() throws { try Self.run("crash", stateFile: stateFile) }
    /// Starts the crashed server again on the same port and data directory.
    public func resume() throws { try Self.run("resume", stateFile: stateFile) }
    /// Stops the server and deletes its data (best effort: a test ending early still cleans up).
    public func stop() { _ = try? Self.run("stop", stateFile: stateFile) }

    public struct ScriptFailed: Error, CustomStringConvertible {
        public var command: String
        public var status: Int32
        public var description: String { "scripts/postgres-test-server.sh \(command) exited with \(status)" }
    }

    /// Runs the script with `command` and returns what it printed.
    ///
    /// Spawned and waited for directly (`posix_spawn`, `waitpid`): Foundation's `Process` did not
    /// see the script exit here (it stayed a zombie, `waitUntilExit` never returned), apparently
    /// because of the server the script leaves running.
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
