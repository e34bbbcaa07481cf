import Foundation
import Sluice

/// Where a ``PostgresDedupeStore`` connects: a `postgres://` (or `postgresql://`) URL, parsed.
///
/// `postgres://user:password@host:port/database?sslmode=disable`. The port defaults to 5432, the
/// database to the user's name; user and password are percent-decoded. `sslmode` takes libpq's
/// values: `disable`, `allow` and `prefer` (the default: TLS when the server offers it),
/// `require` (TLS without verifying the certificate), `verify-ca` and `verify-full` (TLS with a
/// verified certificate).
struct PostgresStoreLocation: Sendable, Equatable {
    enum TLSMode: String, Sendable, Equatable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    var host: String
    var port: Int
    var username: String
    var password: String?
    var database: String
    var tlsMode: TLSMode

    /// Parses `url`.
    ///
    /// - Throws: ``SluiceError`` with ``SluiceError/Code/storeLocationInvalid`` saying what is wrong;
    ///   the message shows the URL with its password masked.
    init(url: String) throws(SluiceError) {
        let shown = Self.redacted(url)
        func invalid(_ reason: String) -> SluiceError {
            SluiceError(code: .storeLocationInvalid, message: "invalid PostgreSQL URL \(shown): \(reason)")
        }
        guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
            throw invalid("expected postgres://user:password@host:port/database")
        }
        guard let components = URLComponents(string: url) else { throw invalid("not a well-formed URL") }
        guard let host = components.host, !host.isEmpty else { throw invalid("the host is missing") }
        guard let username = components.user.flatMap({ $0.removingPercentEncoding }), !username.isEmpty else {
            throw invalid("the user name is missing")
        }
        if let port = components.port, !(1...65535).contains(port) { throw invalid("the port \(port) is out of range") }
        var path = components.path
        if path.hasPrefix("/") { path.removeFirst() }
        guard !path.contains("/") else { throw invalid("the path must be just the database name") }
        let database = path.removingPercentEncoding ?? path

        var tlsMode = TLSMode.prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let value = item.value, let mode = TLSMode(rawValue: value) else {
                    throw invalid("sslmode must be disable, allow, prefer, require, verify-ca or verify-full")
                }
                tlsMode = mode
            default:
                throw invalid("unknown parameter '\(item.name)' (only sslmode is supported)")
            }
        }

        // URLComponents keeps IPv6 literals bracketed.
        self.host = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
        self.port = components.port ?? 5432
        self.username = username
        self.password = components.password.map { $0.removingPercentEncoding ?? $0 }
        self.database = database.isEmpty ? username : database
        self.tlsMode = tlsMode
    }

    /// `url` with the password, if any, replaced by `***`, for messages and logs.
    static func redacted(_ url: String) -> String {
        guard let schemeEnd = url.range(of: "://") else {
            // Not URL-shaped: it may still hold a password anywhere, so show only its start.
            return url.contains("@") ? "<unparsable URL>" : url
        }
        let rest = url[schemeEnd.upperBound...]
        let authorityEnd = rest.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) ?? rest.endIndex
        let authority = rest[..<authorityEnd]
        guard let at = authority.lastIndex(of: "@") else { return url }
        let userInfo = authority[..<at]
        guard let colon = userInfo.firstIndex(of: ":") else { return url }
        return String(url[..<schemeEnd.upperBound]) + userInfo[..<colon] + ":***" + authority[at...] + rest[authorityEnd...]
    }

    /// The URL without the password, for messages and logs.
    var description: String {
        "postgres://\(username)\(password == nil ? "" : ":***")@\(host):\(port)/\(database)?sslmode=\(tlsMode.rawValue)"
    }
}
