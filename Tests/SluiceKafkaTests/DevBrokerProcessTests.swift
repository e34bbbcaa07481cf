import Foundation
import Logging
import Sluice
import SluiceKafka
import Testing

@Suite("sluice dev-broker as a separate process", .serialized)
struct DevBrokerProcessTests {
    typealias Support = KafkaTestSupport

    /// The `sluice` executable built beside the test bundle.
    static var sluiceExecutable: URL {
        URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("sluice")
    }

    @Test("dev-broker prints bootstrap.servers first, serves other processes, and stops on SIGTERM")
    func devBroker() async throws {
        let process = Process()
        process.executableURL = Self.sluiceExecutable
        process.arguments = ["dev-broker", "--brokers", "2", "--topic", "cross-process:3", "--topic", "second:1"]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        defer { if process.isRunning { process.terminate() } }

        // The first line is the contract: scripts read it and go.
        let firstLine = try #require(readLine(from: output.fileHandleForReading))
        #expect(firstLine.hasPrefix("bootstrap.servers="))
        let servers = String(firstLine.dropFirst("bootstrap.servers=".count))
        #expect(servers.split(separator: ",").count == 2)

        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [servers]), logger: Support.logger)
        let reports = try await Support.produceAll(producer, (0..<300).map {
            ProducerRecord(topic: "cross-process", key: Support.bytes("k\($0 % 7)"), value: Support.bytes("v\($0)"))
        })
        #expect(Set(reports.map(\.topicPartition.partition)) == [0, 1, 2], "the topic has the three partitions asked for")

        var configuration = KafkaConsumerConfiguration(bootstrapServers: [servers], groupID: "cross-process")
        configuration.sessionTimeout = .seconds(6)
        let consumer = try KafkaConsumer(configuration: configuration, logger: Support.logger)
        try await consumer.subscribe(["cross-process"])
        let records = try await Support.collect(from: consumer) { $0.count >= 300 }
        #expect(Set(records.map { String(decoding: $0.value ?? [], as: UTF8.self) }) == Set((0..<300).map { "v\($0)" }))
        try await consumer.close()
        try await producer.close()

        process.terminate()  // SIGTERM
        try await Support.eventually("dev-broker to exit after SIGTERM", timeout: .seconds(10)) { !process.isRunning }
        #expect(process.terminationStatus == 0)
    }

    @Test("dev-broker refuses a malformed --topic with a usage error")
    func badTopicSpec() throws {
        let process = Process()
        process.executableURL = Self.sluiceExecutable
        process.arguments = ["dev-broker", "--topic", "no-partitions"]
        process.standardError = Pipe()
        process.standardOutput = Pipe()
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus != 0)
    }

    private func readLine(from handle: FileHandle) -> String? {
        var bytes: [UInt8] = []
        while true {
            let chunk = handle.readData(ofLength: 1)
            guard let byte = chunk.first else { return bytes.isEmpty ? nil : String(decoding: bytes, as: UTF8.self) }
            if byte == UInt8(ascii: "\n") { return String(decoding: bytes, as: UTF8.self) }
            bytes.append(byte)
        }
    }
}
