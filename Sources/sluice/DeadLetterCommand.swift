import ArgumentParser
import Foundation
import Logging
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

    /// Whether `letter` is a stub: its record was too large for the dead-letter topic, and the
    /// original value stays only at its source offset.
    static func isTruncated(_ letter: Record) -> Bool {
        text(letter, DeadLetterHeader.valueTruncated) == "true"
    }

    /// The original record of the stub `letter`, read at exactly its source topic, partition and
    /// offset, its value checked against the letter's `sluice.value.sha256`.
    ///
    /// - Throws: `SluiceError` `DEAD_LETTER_ORIGINAL_EXPIRED` when that record is no longer there
    ///   (the topic or partition is gone, the offset is below the log start or past the end, or
    ///   the record was compacted away); `DEAD_LETTER_ORIGINAL_MISMATCH` when the record there
    ///   has another value. A failure to reach the cluster is rethrown as it is.
    static func original(of letter: Record, kafka: KafkaOptions, logger: Logger) async throws -> Record {
        guard let topic = text(letter, DeadLetterHeader.originalTopic),
            let partition = text(letter, DeadLetterHeader.originalPartition).flatMap({ Int32($0) }),
            let offset = text(letter, DeadLetterHeader.originalOffset).flatMap({ Int64($0) })
        else {
            throw SluiceError(code: .deadLetterOriginalExpired, message: "the letter does not say where its original record is")
        }
        let place = "\(topic)[\(partition)]@\(offset)"
        var plan = try ReplayPlan(source: .topics([topic]), fromOffsets: ["\(partition):\(offset)"], toOffsets: ["\(partition):\(offset)"])
        plan.partitions = [partition]
        let reader: KafkaRangeReader
        do {
            reader = try await KafkaRangeReader.open(
                bootstrapServers: kafka.servers, topics: [topic], plan: plan, properties: kafka.librdkafka, logger: logger)
        } catch let error as SluiceError where error.code == .replayPlanInvalid {
            throw SluiceError(code: .deadLetterOriginalExpired, message: "the original record \(place) is gone: \(error.message)")
        }
        let range = reader.ranges[TopicPartition(topic: topic, partition: partition)]
        guard let range, range.contains(Offset(offset)) else {
            await reader.close()
            let why = range.map { $0.lowerBound.rawValue > offset
                ? "below the partition's log start offset \($0.lowerBound.rawValue)" : "past the partition's end" } ?? "not in the topic"
            throw SluiceError(code: .deadLetterOriginalExpired, message: "the original record \(place) is no longer retained: its offset is \(why)")
        }
        var found: Record?
        do {
            for try await batch in reader.batches {
                found = batch.first { $0.offset == Offset(offset) } ?? found
            }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
        guard let found else {
            throw SluiceError(code: .deadLetterOriginalExpired, message: "the original record \(place) is gone (compacted away)")
        }
        let hash = PayloadHash.of(found.value ?? [])
        guard hash == text(letter, DeadLetterHeader.valueSHA256) else {
            throw SluiceError(
                code: .deadLetterOriginalMismatch,
                message: "the record at \(place) is not the original: its value's SHA-256 is \(hash), the letter's sluice.value.sha256 is \(text(letter, DeadLetterHeader.valueSHA256) ?? "missing")")
        }
        return found
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
            if DeadLetterCommand.isTruncated(record) {
                let t = { (name: String) in DeadLetterCommand.text(record, name) ?? "?" }
                print("""
                    truncated: the record was too large for the dead-letter topic; this letter holds \(record.value?.count ?? 0) of its \
                    \(t(DeadLetterHeader.valueSize)) value bytes (sha256 \(t(DeadLetterHeader.valueSHA256))). The original stays readable at \
                    \(t(DeadLetterHeader.originalTopic))[\(t(DeadLetterHeader.originalPartition))]@\(t(DeadLetterHeader.originalOffset)) while \
                    that topic retains it; dlq redrive copies it from there.
                    """)
            }
        }
    }

    struct Redrive: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Put dead letters back on their original topics, with their original key and headers.",
            discussion: """
                Each matching record goes to its sluice.original.topic and partition with its original key, value and \
                headers (the dead-letter provenance headers removed) plus sluice.redrive.count. A stub (sluice.value.truncated, \
                a record too large for the dead-letter topic) is re-driven from its original, read at its source offset and \
                checked against sluice.value.sha256, or refused (DEAD_LETTER_ORIGINAL_EXPIRED, DEAD_LETTER_ORIGINAL_MISMATCH) and \
                counted as failed. Dead letters stay in the dead-letter topic (Kafka is append-only): the last line says which \
                --from-offset continues after them.
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
            // A stub's original is copied from its source offset, or the letter is refused.
            var refused = 0
            var resolved: [(source: Record, record: ProducerRecord)] = []
            for (source, record) in outgoing {
                guard DeadLetterCommand.isTruncated(source) else {
                    resolved.append((source, record))
                    continue
                }
                do {
                    let original = try await DeadLetterCommand.original(of: source, kafka: kafka, logger: logger)
                    let ours = Set(DeadLetterHeader.all + [DeadLetterCommand.redriveCount])
                    var headers = original.headers.filter { !ours.contains($0.name) }
                    let previous = (DeadLetterCommand.text(source, DeadLetterCommand.redriveCount) ?? DeadLetterCommand.text(original, DeadLetterCommand.redriveCount))
                        .flatMap { Int($0) } ?? 0
                    headers.append(RecordHeader(name: DeadLetterCommand.redriveCount, string: String(previous + 1)))
                    resolved.append((source, ProducerRecord(
                        topic: record.topic, partition: record.partition, key: original.key, value: original.value, headers: headers)))
                } catch let error as SluiceError {
                    refused += 1
                    FileHandle.standardError.write(Data("re-drive of \(topic)[\(source.partition)]@\(source.offset.rawValue) refused: \(error)\n".utf8))
                }
            }
            for (source, record) in resolved {
                let copied = DeadLetterCommand.isTruncated(source)
                    ? " (the original, from \(record.topic)[\(DeadLetterCommand.text(source, DeadLetterHeader.originalPartition) ?? "?")]@\(DeadLetterCommand.text(source, DeadLetterHeader.originalOffset) ?? "?"), sha256 checked)"
                    : ""
                print("\(dryRun ? "would re-drive" : "re-driving") \(topic)[\(source.partition)]@\(source.offset.rawValue) (\(DeadLetterCommand.text(source, DeadLetterHeader.errorCode) ?? "-")) → \(record.topic)[\(record.partition.map(String.init) ?? "by key")]\(copied)")
            }
            var failed = refused
            if !dryRun && !resolved.isEmpty {
                // Originals copied from their source topics can be larger than librdkafka's default
                // limit (which is why they were stubbed): the source topic took them, so let them through.
                let largest = resolved.map { letter in
                    let record = letter.record
                    return (record.key?.count ?? 0) + (record.value?.count ?? 0)
                        + record.headers.reduce(0) { $0 + 10 + $1.name.utf8.count + ($1.value?.count ?? 0) } + 1_024
                }.max() ?? 0
                let producer = try kafka.producer(logger: logger, fitting: largest)
                // In dead-letter order: records re-driven to one partition keep their order.
                for ((_, record), result) in zip(resolved, await producer.send(resolved.map(\.record))) {
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

extension SluiceError.Code {
    /// `sluice dlq redrive`: the original of a stub is no longer at its source offset.
    static let deadLetterOriginalExpired: Self = "DEAD_LETTER_ORIGINAL_EXPIRED"
    /// `sluice dlq redrive`: the record at a stub's source offset is not its original (another SHA-256).
    static let deadLetterOriginalMismatch: Self = "DEAD_LETTER_ORIGINAL_MISMATCH"
}
