import Foundation

/// The test services' record of handler calls: lines appended with O_APPEND, each in one write,
/// so a SIGKILL can cut the ledger only between lines and processes may share one file.
public final class Ledger: Sendable {
    private let descriptor: Int32

    /// Opens (creating) `path` for appending.
    public init(path: String) {
        descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
    }

    /// Appends `line` and a newline in one `write`.
    public func append(_ line: String) {
        let bytes = Array((line + "\n").utf8)
        _ = bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
