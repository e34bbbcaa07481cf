import Foundation

/// Builds the JSON Pointers (RFC 6901) that envelope, payload and upcasting errors carry.
enum EnvelopePath {
    /// Escapes one reference token: `~` becomes `~0`, `/` becomes `~1`.
    static func escape(_ token: String) -> String {
        guard token.contains(where: { $0 == "~" || $0 == "/" }) else { return token }
        return token.replacingOccurrences(of: "~", with: "~0").replacingOccurrences(of: "/", with: "~1")
    }
}
