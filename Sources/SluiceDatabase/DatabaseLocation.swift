import Foundation
import Sluice

/// What `--database` names: a SQLite file or a PostgreSQL server.
public enum DatabaseLocation: Sendable, Hashable, CustomStringConvertible {
    /// A SQLite file (created when missing).
    case sqlite(path: String)
    /// A PostgreSQL database, as a `postgres://` or `postgresql://` URL.
    case postgres(url: String)

    /// Reads a `--database` value: a `postgres://` / `postgresql://` URL, a `sqlite:` or
    /// `file:` URL-ish prefix followed by a path, or a plain file path.
    ///
    /// - Throws: ``SluiceError`` with ``SluiceError/Code/storeLocationInvalid`` for an empty value,
    ///   a directory path, or another URL scheme (`mysql://…`).
    public init(parsing text: String) throws(SluiceError) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let lowered = trimmed.lowercased()
        if lowered.hasPrefix("postgres://") || lowered.hasPrefix("postgresql://") {
            self = .postgres(url: trimmed)
            return
        }
        var path = trimmed
        for prefix in ["sqlite://", "sqlite:", "file://", "file:"] where lowered.hasPrefix(prefix) {
            path = String(trimmed.dropFirst(prefix.count))
            break
        }
        if let scheme = path.range(of: "://"), !path[..<scheme.lowerBound].contains("/") {
            throw SluiceError(
                code: .storeLocationInvalid,
                message: "--database takes a SQLite file path or a postgres:// URL, not a \(path[..<scheme.lowerBound]):// URL")
        }
        guard !path.isEmpty else {
            throw SluiceError(code: .storeLocationInvalid, message: "--database is empty: give a SQLite file path or a postgres:// URL")
        }
        guard !path.hasSuffix("/") else {
            throw SluiceError(code: .storeLocationInvalid, message: "--database '\(path)' names a directory, not a SQLite file")
        }
        self = .sqlite(path: path)
    }

    /// The location with any password in a URL replaced by `***`, for logs and errors.
    public var description: String {
        switch self {
        case .sqlite(let path):
            return "sqlite:\(path)"
        case .postgres(let url):
            guard let schemeEnd = url.range(of: "://"), let at = url.range(of: "@", range: schemeEnd.upperBound..<url.endIndex),
                let colon = url.range(of: ":", range: schemeEnd.upperBound..<at.lowerBound)
            else { return url }
            return url.replacingCharacters(in: colon.upperBound..<at.lowerBound, with: "***")
        }
    }
}
