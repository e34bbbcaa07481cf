import ArgumentParser
import Foundation
import Sluice
import SluiceKafka

/// `sluice export`: a topic's range to a snapshot file.
struct ExportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a topic's records (a range of them) to a snapshot file: JSON Lines, partition then offset order.",
        discussion: """
            Without range options: every partition from its first retained record to the high watermark at start. \
            An export that matches no record writes an empty file and exits 1, unless --allow-empty is given.
            """)

    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var range: RangeOptions
    @OptionGroup var empty: EmptyRangeOption

    @Option(help: "The topic to export.") var topic: String
    @Option(help: "The snapshot file to write; - for standard output.") var output: String = "-"

    func run() async throws {
        let logger = KafkaOptions.logger("sluice.export")
        let plan = try range.plan(topics: [topic])
        let out = try OutputStream(path: output)
        var count = 0
        let ranges = try await readRange(kafka, topic: topic, plan: plan, logger: logger) { batch in
            for record in batch { out.write(line: SnapshotRecordCoding.encode(record)) }
            count += batch.count
        }
        out.close()
        let described = ranges.sorted { $0.key < $1.key }.map { "\($0.key.partition):\($0.value.lowerBound.rawValue)..<\($0.value.upperBound.rawValue)" }
        FileHandle.standardError.write(Data("exported \(count) records of \(topic) (\(described.joined(separator: " ")))\n".utf8))
        if count == 0 {
            FileHandle.standardError.write(Data("no record matched the range\(empty.allowEmpty ? "" : "; --allow-empty accepts that")\n".utf8))
            if !empty.allowEmpty { throw ExitCode(1) }
        }
    }
}
