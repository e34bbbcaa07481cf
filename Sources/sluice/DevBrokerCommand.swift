import ArgumentParser
import Dispatch
import Foundation
import Logging
import SluiceKafka

/// `sluice dev-broker`: an embedded Kafka cluster for local development and other processes' tests.
struct DevBrokerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dev-broker",
        abstract: "Run an embedded Kafka cluster (librdkafka's mock cluster) on loopback until SIGINT or SIGTERM.",
        discussion: """
            The first line printed is `bootstrap.servers=<list>`; point any Kafka client (another Sluice \
            process, kcat, …) at that list. The cluster keeps only about 5 MB per partition.
            """
    )

    @Option(name: .long, help: "Number of brokers.")
    var brokers: Int = 1

    @Option(name: .long, help: "A topic to create, as NAME:PARTITIONS (repeatable).")
    var topic: [TopicSpec] = []

    func validate() throws {
        guard brokers >= 1 else { throw ValidationError("--brokers must be at least 1") }
    }

    func run() async throws {
        var logger = Logger(label: "sluice.dev-broker") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        let cluster = try EmbeddedKafkaCluster(brokers: brokers, logger: logger)
        for spec in topic {
            try cluster.createTopic(spec.name, partitions: spec.partitions)
        }
        // The contract: this is the first line, so scripts can read it and go.
        print("bootstrap.servers=\(cluster.bootstrapServers)")
        for spec in topic { print("topic \(spec.name) partitions=\(spec.partitions)") }
        fflush(nil)  // all output streams: the line must reach a pipe now, not at exit

        let signal = await Self.waitForTermination()
        FileHandle.standardError.write(Data("dev-broker: received \(signal), shutting down\n".utf8))
        withExtendedLifetime(cluster) {}
    }

    /// Suspends until SIGINT or SIGTERM arrives; returns its name.
    private static func waitForTermination() async -> String {
        let (signals, continuation) = AsyncStream.makeStream(of: String.self)
        var sources: [any DispatchSourceSignal] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            Foundation.signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { continuation.yield(name) }
            source.resume()
            sources.append(source)
        }
        defer { sources.forEach { $0.cancel() } }
        for await name in signals { return name }
        return "end of signals"
    }
}

/// `NAME:PARTITIONS` for `--topic`.
struct TopicSpec: ExpressibleByArgument {
    var name: String
    var partitions: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"),
            let partitions = Int(argument[argument.index(after: colon)...]), partitions >= 1,
            colon != argument.startIndex
        else { return nil }
        self.name = String(argument[..<colon])
        self.partitions = partitions
    }
}
