import Foundation
import InMemoryLogging
import Logging
import Sluice
@testable import SluiceKafka
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A client pointed at something that is not a Kafka listener: librdkafka's repeated handshake
/// warnings become one plain error that says what to check.
@Suite("A client and a broker that do not understand each other get one plain error")
struct ProtocolMismatchTests {
    /// A TCP listener on 127.0.0.1 that answers every request with a few junk bytes: a size of 6,
    /// the request's correlation id, and two bytes, which is no ApiVersion response (librdkafka:
    /// `ApiVersionRequest failed: Local: Read underflow`).
    final class JunkListener: Sendable {
        let port: UInt16
        private let descriptor: Int32

        init() throws {
            #if canImport(Glibc)
            let listening = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            #else
            let listening = socket(AF_INET, SOCK_STREAM, 0)
            #endif
            guard listening >= 0 else { throw POSIXError(.EMFILE) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            address.sin_port = 0
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            let bound = withUnsafeMutablePointer(to: &address) { pointer in
                pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listening, $0, length) == 0 && getsockname(listening, $0, &length) == 0 }
            }
            guard bound, listen(listening, 16) == 0 else {
                close(listening)
                throw POSIXError(.EADDRINUSE)
            }
            descriptor = listening
            port = UInt16(bigEndian: address.sin_port)
            Thread.detachNewThread {
                while true {
                    let connection = accept(listening, nil, nil)
                    guard connection >= 0 else { return }
                    Thread.detachNewThread { Self.answer(connection) }
                }
            }
        }

        private static func answer(_ connection: Int32) {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let count = read(connection, &buffer, buffer.count)
                guard count > 0 else { break }
                // size 6 | the request's correlation id (bytes 8…11 of the request) | 2 junk bytes
                let correlation = count >= 12 ? Array(buffer[8..<12]) : [0, 0, 0, 1]
                let junk: [UInt8] = [0, 0, 0, 6] + correlation + [0x4A, 0x4B]
                guard write(connection, junk, junk.count) == junk.count else { break }
            }
            close(connection)
        }

        func stop() {
            shutdown(descriptor, Int32(SHUT_RDWR))
            close(descriptor)
        }
    }

    static let diagnosis = "do not understand each other"

    @Test("Pointed at a port that answers junk, a consumer logs one error naming security.protocol, the port and the librdkafka version, after the connection timeout")
    func junkListener() async throws {
        let listener = try JunkListener()
        defer { listener.stop() }
        let logs = InMemoryLogHandler()
        var logger = Logger(label: "mismatch") { _ in logs }
        logger.logLevel = .info
        var configuration = KafkaConsumerConfiguration(bootstrapServers: ["127.0.0.1:\(listener.port)"], groupID: "mismatch")
        // The connection timeout the error waits for (librdkafka's minimum; the default is 30 s).
        configuration.properties["socket.connection.setup.timeout.ms"] = "1000"
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        try await consumer.subscribe(["anything"])
        let started = ContinuousClock.now

        let diagnoses: @Sendable () -> [InMemoryLogHandler.Entry] = {
            logs.entries.filter { $0.level == .error && "\($0.message)".contains(Self.diagnosis) }
        }
        try await KafkaTestSupport.eventually("the plain error", timeout: .seconds(30)) { !diagnoses().isEmpty }
        #expect(ContinuousClock.now - started >= .milliseconds(900), "not before the connection timeout")
        #expect(logs.entries.contains { "\($0.message)".contains("ApiVersionRequest failed") }, "librdkafka's own warning came first")
        // librdkafka keeps failing and warning; the plain error is not repeated.
        try await Task.sleep(for: .seconds(3))
        let errors = diagnoses()
        #expect(errors.count == 1, "\(errors.map { "\($0.message)" })")
        let text = errors.first.map { "\($0.message)" } ?? ""
        #expect(text.contains("security.protocol"), "\(text)")
        #expect(text.contains("127.0.0.1:\(listener.port)"), "\(text)")
        #expect(text.contains("librdkafka \(KafkaLibrary.version)"), "\(text)")
        try? await consumer.close()
    }

    @Test("One failed handshake (a broker restarting mid-handshake) and unrelated lines give no error; a second failure after the timeout does")
    func singleFailureIsNoDiagnosis() async throws {
        let logs = InMemoryLogHandler()
        let watch = RDKafkaConnectionWatch(
            properties: ["bootstrap.servers": "kafka-1:9092", "socket.connection.setup.timeout.ms": "1000"], logger: Logger(label: "watch") { _ in logs })
        #expect(watch.quietGap == .seconds(60))
        watch.note("kafka-1:9092/1: Connect to ipv4#10.0.0.1:9092 failed: Connection refused")
        watch.note("kafka-1:9092/1: Disconnected while requesting ApiVersion: might be caused by incorrect security.protocol configuration")
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(logs.entries.isEmpty, "one failure is no pattern")
        watch.note("kafka-1:9092/1: ApiVersionRequest failed: Local: Read underflow")
        watch.note("kafka-1:9092/1: ApiVersionRequest failed: Local: Read underflow")
        #expect(logs.entries.count == 1 && logs.entries.first?.level == .error)
        #expect(logs.entries.first.map { "\($0.message)".contains("security.protocol (plaintext, the default)") } == true)
    }
}
