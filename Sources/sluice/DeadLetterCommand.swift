import ArgumentParser
import Foundation
import Sluice
import SluiceKafka

/// `sluice dlq list|show|redrive`: inspect a dead-letter topic and put its records back.
struct DeadLetterCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "Inspect a dead-letter topic and re-drive its records to their original topics.",
        subcommands: [List.self, Show.self, Redrive.self])

    /// The header a re-driven record carries: how often it was re-driven.
    static let redriveCount = "sluice.redrive.count"

    static func text(_ record: Record, _ name: String) -> String? {
        record.header(name).map { String(decoding: $0, as: UTF8.self) }
    }

    static func matches(_ record: Record, codes: [String]) -> Bool {
        codes.isEmpty || codes.contains(text(record, DeadLetterHeader.errorCode) ?? "")
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One line per dead letter: where it is, its code, where it came from, why.")

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var range: RangeOptions
        @Option(help: "The dead-letter topic.") var topic: String
        @Option(help: "Only records with this sluice.error.code (repeatable).") var code: [String] = []

        func run() async throws {
            var count = 0
            _ = try await readRange(kafka, topic: topic, plan: try range.plan(topics: [topic]), logger: KafkaOptions.logger("sluice.dlq")) { batch in
                for record in batch where DeadLetterCommand.matches(record, codes: code) {
                    count += 1
                    let t = { (name: String) in DeadLetterCommand.text(record, name) ?? "-" }
                    print("\(record.partition):\(record.offset.rawValue)  \(t(DeadLetterHeader.errorCode))  from \(t(DeadLetterHeader.originalTopic))[\(t(DeadLetterHeader.originalPartition))]@\(t(DeadLetterHeader.originalOffset))  event \(t(DeadLetterHeader.eventID))  at \(t(DeadLetterHeader.failedAt))  \(t(DeadLetterHeader.errorMessage))")
                }
            }
            print("\(count) dead letter(s)")
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "One dead letter in full: every header, the key and the value.")

        @OptionGroup var kafka: KafkaOptions
        @Option(help: "The dead-letter topic.") var topic: String
        @Option(help: "Its partition.") var partition: Int32
        @Option(help: "Its offset.") var offset: Int64

        func run() async throws {
            let plan = try ReplayPlan(source: .topics([topic]), fromOffsets: ["\(partition):\(offset)"], toOffsets: ["\(partition):\(offset)"])
            var found: Record?
            _ = try await readRange(kafka, topic: topic, plan: plan, logger: KafkaOptions.logger("sluice.dlq")) { batch in
                found = batch.first { $0.offset.rawValue == offset } ?? found
            }
            guard let record = found else {
                FileHandle.standardError.write(Data("no record at \(topic)[\(partition)]@\(offset)\n".utf8))
                throw ExitCode(1)
            }
            print("\(topic)[\(record.partition)]@\(record.offset.rawValue)")
            for header in record.headers {
                print("  \(header.name): \(header.value.map { String(decoding: $0, as: UTF8.self) } ?? "(null)")")
            }
            print("key: \(record.key.map { String(decoding: $0, as: UTF8.self) } ?? "(null)")")
            print("value: \(record.value.map { String(decoding: $0, as: UTF8.self) } ?? "(null)")")
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters back on their original topics, with their original key and headers.",
            discussion: """
                Each matching record goes to its sluice.original.topic and partition with its original key, value and \
                headers (the dead-letter provenance headers removed) plus sluice.redrive.count. Dead letters stay in the \
                dead-letter topic (Kafka is append-only): the last line says which --from-offset continues after them.
                """)

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var range: RangeOptions
        @Option(help: "The dead-letter topic.") var topic: String
        @Option(help: "Only records with this sluice.error.code (repeatable).") var code: [String] = []
        @Flag(name: .customLong("dry-run"), help: "Show what would be re-driven; produce nothing.") var dryRun = false

        func run() async throws {
            let logger = KafkaOptions.logger("sluice.dlq")
            var outgoing: [(source: Record, record: ProducerRecord)] = []
            var skipped = 0
            let ranges = try await readRange(kafka, topic: topic, plan: try range.plan(topics: [topic]), logger: logger) { batch in
                for record in batch {
                    guard DeadLetterCommand.matches(record, codes: code), let original = DeadLetterCommand.text(record, DeadLetterHeader.originalTopic) else {
                        skipped += 1
                        continue
                    }
                    let ours = Set(DeadLetterHeader.all + [DeadLetterCommand.redriveCount])
                    var headers = record.headers.filter { !ours.contains($0.name) }
                    let previous = DeadLetterCommand.text(record, DeadLetterCommand.redriveCount).flatMap { Int($0) } ?? 0
                    headers.append(RecordHeader(name: DeadLetterCommand.redriveCount, string: String(previous + 1)))
                    let partition = DeadLetterCommand.text(record, DeadLetterHeader.originalPartition).flatMap { Int32($0) }
                    outgoing.append((record, ProducerRecord(topic: original, partition: partition, key: record.key, value: record.value, headers: headers)))
                }
            }
            for (source, record) in outgoing {
                print("\(dryRun ? "would re-drive" : "re-driving") \(topic)[\(source.partition)]@\(source.offset.rawValue) (\(DeadLetterCommand.text(source, DeadLetterHeader.errorCode) ?? "-")) → \(record.topic)[\(record.partition.map(String.init) ?? "by key")]")
            }
            var failed = 0
            if !dryRun && !outgoing.isEmpty {
                let producer = try kafka.producer(logger: logger)
                // In dead-letter order: records re-driven to one partition keep their order.
                for ((_, record), result) in zip(outgoing, await producer.send(outgoing.map(\.record))) {
                    if case .failure(let error) = result {
                        failed += 1
                        FileHandle.standardError.write(Data("re-drive to \(record.topic) failed: \(error)\n".utf8))
                    }
                }
                try? await producer.close()
            }
            print("\(dryRun ? "would re-drive" : "re-drove") \(outgoing.count - failed) record(s); \(skipped) left (other codes); \(failed) failed")
            let next = ranges.sorted { $0.key < $1.key }.map { "--from-offset \($0.key.partition):\($0.value.upperBound.rawValue)" }
            if !next.isEmpty { print("next time, continue with: \(next.joined(separator: " "))") }
            if failed > 0 { throw ExitCode(1) }
        }
    }
}
