import ArgumentParser
import CRawConsumeLoop
import Foundation
import Logging
import Sluice
import SluiceKafka

/// `sluice-benchmarks`: throughput figures measured against a baseline in the same run.
///
/// Run in release mode: `swift run -c release sluice-benchmarks kafka-consumer`.
@main
struct SluiceBenchmarks: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-benchmarks",
        abstract: "Sluice benchmarks, each against a baseline measured in the same run.",
        subcommands: [PipelineBenchmark.self, KafkaConsumerBenchmark.self, EnvelopeDecodeBenchmark.self, StoreBenchmark.self]
    )
}

/// Envelope decode (parse, rules, payload validation) against Foundation's parse alone.
struct EnvelopeDecodeBenchmark: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "envelope",
        abstract: "Envelopes/s of Sluice's full decode vs JSONSerialization parsing the same bytes.")

    @Option(help: "Envelopes per measurement.") var iterations = 500_000

    func run() throws {
        print(EnvelopeBenchmark.run(iterations: iterations))
    }
}

/// The SluiceKafka consumer against a raw librdkafka C loop reading the same records.
struct KafkaConsumerBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kafka-consumer",
        abstract: "Records/s of KafkaConsumer vs a raw C rd_kafka_consumer_poll loop on the same topic."
    )

    @Option(help: "Records to produce and read.") var records = 400_000
    @Option(help: "Partitions of the topic (the embedded broker keeps ~5 MB per partition).") var partitions = 64
    @Option(help: "Approximate bytes per record value.") var valueSize = 400
    @Option(help: "Rounds; each round runs the baseline and the Swift consumer once.") var rounds = 3

    func run() async throws {
        var logger = Logger(label: "sluice.benchmarks") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .error
        let cluster = try EmbeddedKafkaCluster(brokers: 1, logger: logger)
        let topic = "bench"
        try cluster.createTopic(topic, partitions: partitions)
        print("librdkafka mock cluster at \(cluster.bootstrapServers); \(records) records of ~\(valueSize) B over \(partitions) partitions")

        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
        let padding = [UInt8](repeating: UInt8(ascii: "x"), count: max(0, valueSize - 40))
        for index in 0..<records {
            let value = Array("{\"seq\":\(index),\"pad\":\"".utf8) + padding + Array("\"}".utf8)
            try await producer.enqueue(
                ProducerRecord(topic: topic, partition: Int32(index % partitions), key: Array("key-\(index % 1000)".utf8), value: value)
            ) { result in
                if case .failure(let error) = result { fatalError("benchmark data could not be produced: \(error)") }
            }
        }
        try await producer.flush(timeout: .seconds(120))
        try await producer.close()

        var rawRates: [Double] = []
        var swiftRates: [Double] = []
        for round in 1...rounds {
            var checksum: Int64 = 0
            let rawSeconds = sluice_raw_consume(cluster.bootstrapServers, topic, Int32(partitions), Int64(records), &checksum)
            guard rawSeconds > 0 else { throw ValidationError("the raw loop failed") }
            let swift = try await swiftConsume(cluster: cluster, topic: topic, logger: logger)
            guard swift.bytes == checksum else { throw ValidationError("the two loops read different data: \(swift.bytes) vs \(checksum) bytes") }
            rawRates.append(Double(records) / rawSeconds)
            swiftRates.append(Double(records) / swift.seconds)
            print(String(format: "round %d: raw C loop %.0f records/s, SluiceKafka %.0f records/s, ratio %.2f",
                         round, rawRates.last!, swiftRates.last!, swiftRates.last! / rawRates.last!))
        }
        let raw = median(rawRates)
        let swift = median(swiftRates)
        print(String(format: "median: raw C loop %.0f records/s, SluiceKafka %.0f records/s, ratio %.2f (target >= 0.80)", raw, swift, swift / raw))
    }

    private func swiftConsume(cluster: EmbeddedKafkaCluster, topic: String, logger: Logger) async throws -> (seconds: Double, bytes: Int64) {
        let consumer = try KafkaConsumer(configuration: .init(bootstrapServers: [cluster.bootstrapServers], groupID: nil), logger: logger)
        var offsets: [TopicPartition: Offset] = [:]
        for partition in 0..<partitions { offsets[TopicPartition(topic: topic, partition: Int32(partition))] = .beginning }
        let start = ContinuousClock.now
        try await consumer.assign(offsets)
        var count = 0
        var bytes: Int64 = 0
        for try await batch in consumer.batches {
            for record in batch {
                bytes += Int64(record.value?.count ?? 0) + Int64(record.key?.count ?? 0)
            }
            count += batch.count
            if count >= records { break }
        }
        let elapsed = ContinuousClock.now - start
        try await consumer.close()
        return (Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18, bytes)
    }

    private func median(_ values: [Double]) -> Double {
        let sorted = values.sorted()
        return sorted[sorted.count / 2]
    }
}
