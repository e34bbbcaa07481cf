import ArgumentParser
import Foundation
import Sluice
import SluiceKafka

/// `sluice produce`: envelopes (JSON Lines) or a snapshot file to a topic.
struct ProduceCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Produce envelopes (one JSON object per line) or a snapshot file's records to a topic.",
        discussion: """
            --format envelopes: each line is an envelope; its Kafka key is the envelope's `subject` (so one subject's \
            events stay in one partition, in order). --format snapshot: each record keeps its key, headers and value \
            (and its timestamp); --keep-partitions sends it to its recorded partition. Every line is checked before \
            anything is produced; a bad line stops the command with its line number and nothing produced.
            """)

    enum Format: String, ExpressibleByArgument, CaseIterable {
        case envelopes, snapshot
    }

    @OptionGroup var kafka: KafkaOptions

    @Option(help: "The topic to produce to (with --format snapshot: default, each record's own topic).") var topic: String?
    @Option(help: "The file to read; - for standard input.") var input: String = "-"
    @Option(help: "envelopes or snapshot.") var format: Format = .envelopes
    @Flag(name: .customLong("keep-partitions"), help: "Send snapshot records to their recorded partitions.") var keepPartitions = false

    func validate() throws {
        if format == .envelopes && topic == nil { throw ValidationError("--topic is needed with --format envelopes") }
    }

    func run() async throws {
        let logger = KafkaOptions.logger("sluice.produce")
        let data: Data
        if input == "-" {
            data = FileHandle.standardInput.readDataToEndOfFile()
        } else {
            guard let contents = FileManager.default.contents(atPath: input) else { throw ValidationError("cannot read \(input)") }
            data = contents
        }
        var records: [ProducerRecord] = []
        for (index, line) in data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).enumerated() {
            let trimmed = line.last == UInt8(ascii: "\r") ? line.dropLast() : line[...]
            guard trimmed.contains(where: { $0 != UInt8(ascii: " ") }) else { continue }
            do {
                records.append(try record(Array(trimmed)))
            } catch {
                throw ValidationError("\(input):\(index + 1): \(error.code): \(error.message) — nothing was produced")
            }
        }
        let producer = try kafka.producer(logger: logger)
        var failures: [String] = []
        var partitions: [Int32: Int] = [:]
        // In file order, one after another: records bound for one partition keep their order.
        for result in await producer.send(records) {
            switch result {
            case .success(let report): partitions[report.topicPartition.partition, default: 0] += 1
            case .failure(let error): failures.append("\(error)")
            }
        }
        try? await producer.close()
        let spread = partitions.sorted { $0.key < $1.key }.map { "\($0.key): \($0.value)" }.joined(separator: ", ")
        print("produced \(records.count - failures.count) of \(records.count) records to \(topic ?? "their recorded topics") (by partition: \(spread))")
        if !failures.isEmpty {
            FileHandle.standardError.write(Data("\(failures.count) records failed, e.g. \(failures[0])\n".utf8))
            throw ExitCode(1)
        }
    }

    private func record(_ line: [UInt8]) throws(SluiceError) -> ProducerRecord {
        switch format {
        case .snapshot:
            let recorded = try SnapshotRecordCoding.decode(line: line)
            var record = ProducerRecord(
                topic: topic ?? recorded.topic, partition: keepPartitions ? recorded.partition : nil, key: recorded.key, value: recorded.value,
                headers: recorded.headers)
            record.timestampMilliseconds = recorded.timestamp?.milliseconds
            return record
        case .envelopes:
            let document: JSONValue
            do {
                document = try JSONParser.parse(line)
            } catch {
                throw SluiceError(code: .envelopeNotJSON, message: "not JSON: \(error)")
            }
            guard case .object(let object) = document else {
                throw SluiceError(code: .envelopeNotJSON, message: "an envelope is a JSON object")
            }
            guard case .string? = object["event_id"] else {
                throw SluiceError(code: .envelopeFieldMissing, message: "the envelope has no event_id", path: "/event_id")
            }
            var key: [UInt8]?
            if case .string(let subject)? = object["subject"] { key = Array(subject.utf8) }
            return ProducerRecord(topic: topic ?? "", key: key, value: line)
        }
    }
}
