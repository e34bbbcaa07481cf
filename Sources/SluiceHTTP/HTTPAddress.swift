import Sluice

/// Where the operations endpoint listens: `HOST:PORT`, as `--http-address` takes it.
///
/// The host is an IPv4 address, a host name, or an IPv6 address in brackets (`[::1]:9090`);
/// the port is 0 to 65535 (0: any free port, which the endpoint logs when it listens).
public struct HTTPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The host to bind.
    public var host: String
    /// The port to bind; 0 for any free one.
    public var port: Int

    /// `host`:`port`.
    public init(host: String, port: Int) {
        self.host = host
        self.port = port
    }

    /// Parses `HOST:PORT`.
    ///
    /// - Throws: `SluiceError` with code `HTTP_ADDRESS_INVALID` saying what is wrong with `text`.
    public init(parsing text: String) throws(SluiceError) {
        func invalid(_ why: String) -> SluiceError {
            SluiceError(code: .httpAddressInvalid, message: "--http-address takes HOST:PORT (e.g. 127.0.0.1:9090), got '\(text)': \(why)")
        }
        guard let colon = text.lastIndex(of: ":") else { throw invalid("no port") }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { throw invalid("an IPv6 host needs its closing bracket") }
            host = String(host.dropFirst().dropLast())
        } else if host.contains(":") {
            throw invalid("put an IPv6 host in brackets, e.g. [::1]:9090")
        }
        guard !host.isEmpty else { throw invalid("no host (use 0.0.0.0 to listen on every interface)") }
        guard !host.contains(where: \.isWhitespace) else { throw invalid("the host contains a space") }
        guard !portText.isEmpty, portText.allSatisfy(\.isASCII), let port = Int(portText), (0...65_535).contains(port) else {
            throw invalid("the port is a number from 0 to 65535")
        }
        self.init(host: host, port: port)
    }

    /// `HOST:PORT`, with an IPv6 host in brackets.
    public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

extension SluiceError.Code {
    /// `--http-address` is not `HOST:PORT`.
    public static let httpAddressInvalid: Self = "HTTP_ADDRESS_INVALID"
    /// The operations endpoint cannot listen on its address: another process has the port, or
    /// the host is not an address of this machine.
    public static let httpAddressUnavailable: Self = "HTTP_ADDRESS_UNAVAILABLE"
}
