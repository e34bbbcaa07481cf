/// Keeps secret configuration values out of every text Sluice shows: logs, errors, descriptions.
///
/// A property is secret when its name says so (`sasl.password`, `ssl.key.password`,
/// `ssl.keystore.password`, `sasl.oauthbearer.client.secret`, PEM material, …). The redactor knows
/// the values of those properties and replaces each occurrence in any text with `[REDACTED]`, so
/// that even a librdkafka message that quoted a value cannot leak it.
struct SecretRedactor: Sendable {
    static let placeholder = "[REDACTED]"

    private let secrets: [String]

    init(properties: [String: String]) {
        // Longest first, so a secret that contains another is replaced whole.
        self.secrets = properties
            .filter { Self.isSecret($0.key) && !$0.value.isEmpty }
            .map(\.value)
            .sorted { $0.count > $1.count }
    }

    /// Whether a librdkafka property holds a secret.
    static func isSecret(_ name: String) -> Bool {
        let lowered = name.lowercased()
        return lowered.contains("password")
            || lowered.contains("secret")
            || lowered.hasSuffix(".pem")
            || lowered == "sasl.oauthbearer.config"
            || lowered == "sasl.jaas.config"
            || lowered == "ssl.key.pem"
            || lowered == "ssl_key"
    }

    /// `text` with every secret value replaced.
    func redact(_ text: String) -> String {
        guard !secrets.isEmpty else { return text }
        var result = text
        for secret in secrets where result.contains(secret) {
            result = result.replacing(secret, with: Self.placeholder)
        }
        return result
    }

    /// A printable form of `properties` with secret values replaced.
    static func describe(_ properties: [String: String]) -> String {
        let parts = properties.sorted { $0.key < $1.key }.map { key, value in
            "\(key)=\(isSecret(key) ? placeholder : value)"
        }
        return "[" + parts.joined(separator: ", ") + "]"
    }
}
