import Foundation

/// Builds the JSON Pointers (RFC 6901) that envelope, payload and upcasting errors carry.
enum EnvelopePath {
    /// Escapes one reference token: `~` becomes `~0`, `/` becomes `~1`.
    static func escape(_ token: String) -> String {
        // The validator's escaping, which finds "~" and "/" even before a combining mark.
        JSONPointer.escape(token)
    }
}
