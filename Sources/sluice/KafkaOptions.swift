import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceKafka

/// The connection options every Kafka-facing operator command takes.
struct KafkaOptions: ParsableArguments {
    @Option(name: .customLong("bootstrap-servers"), help: "Kafka brokers, host:port[,host:port…].")
    var bootstrapServers: String

    @Option(name: [.customShort("X"), .customLong("property")], help: "A librdkafka property, NAME=VALUE (repeatable).")
    var properties: [String] = []

    func validate() throws {
        for property in properties where !property.contains("=") {
            throw ValidationError("--property takes NAME=VALUE, got '\(property)'")
        }
    }

    var servers: [String] { bootstrapServers.split(separator: ",").map(String.init) }

    var librdkafka: [String: String] {
        var result: [String: String] = [:]
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            result[parts[0]] = parts[1]
        }
        return result
    }

    /// A producer with these options; `fitting` (bytes) raises its `message.max.bytes` to let
    /// records that large through, unless `-X message.max.bytes` sets it.
    func producer(logger: Logger, fitting largest: Int = 0) throws -> KafkaProducer {
        var configuration = KafkaProducerConfiguration(bootstrapServers: servers)
        for (name, value) in librdkafka { configuration.properties[name] = value }
        if librdkafka["message.max.bytes"] == nil, largest > configuration.messageMaxBytes {
            configuration.properties["message.max.bytes"] = String(min(largest, 1_000_000_000))
        }
        return try KafkaProducer(configuration: configuration, logger: logger)
    }

    static func logger(_ label: String) -> Logger {
        var logger = Logger(label: label) { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .warning
        return logger
    }
}

/// `--from-offset`/`--to-offset`/`--from-timestamp`/`--to-timestamp`, as the replay command has them.
struct RangeOptions: ParsableArguments {
    @Option(name: .customLong("from-offset"), help: "PARTITION:OFFSET, the first offset read in that partition (repeatable).")
    var fromOffsets: [String] = []

    @Option(name: .customLong("to-offset"), help: "PARTITION:OFFSET, the last offset read in that partition, inclusive (repeatable).")
    var toOffsets: [String] = []

    @Option(name: .customLong("from-timestamp"), help: "RFC 3339: records stamped at or after this time.")
    var fromTimestamp: String?

    @Option(name: .customLong("to-timestamp"), help: "RFC 3339: records stamped at or before this time.")
    var toTimestamp: String?

    func plan(topics: [String]) throws -> ReplayPlan {
        do {
            return try ReplayPlan(
                source: .topics(topics), fromOffsets: fromOffsets, toOffsets: toOffsets, fromTimestamp: fromTimestamp, toTimestamp: toTimestamp)
        } catch {
            throw ValidationError(error.description)
        }
    }
}

/// Reads a range of a topic, one partition after another (so output is in partition, then
/// offset order), handing each partition's records to `body` in batches.
///
/// The ranges are resolved once, at the start (the end pinned to what it was then, whatever
/// arrives meanwhile); the records of each partition are checked against the broker's answers
/// for timestamps as they are read (`REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED`).
func readRange(
    _ kafka: KafkaOptions, topic: String, plan: ReplayPlan, logger: Logger, _ body: ([Record]) throws -> Void
) async throws -> [TopicPartition: Range<Offset>] {
    let resolved = try await KafkaRangeReader.open(
        bootstrapServers: kafka.servers, topics: [topic], plan: plan, properties: kafka.librdkafka, logger: logger)
    await resolved.close()
    for partition in resolved.partitionsToRead {
        let reader = try await resolved.reader(for: [partition])
        do {
            for try await batch in reader.batches { try body(batch) }
        } catch {
            await reader.close()
            throw error
        }
        await reader.close()
    }
    return resolved.ranges
}

/// `--allow-empty`, for the commands that fail when a range matched no record.
struct EmptyRangeOption: ParsableArguments {
    @Flag(name: .customLong("allow-empty"), help: "Succeed when no record matches the range (by default that fails).")
    var allowEmpty = false
}

/// Writes text to a file or standard output.
final class OutputStream {
    private let handle: FileHandle
    private let ownsHandle: Bool
    private var buffer: [UInt8] = []

    init(path: String?) throws {
        if let path, path != "-" {
            guard FileManager.default.createFile(atPath: path, contents: nil), let handle = FileHandle(forWritingAtPath: path) else {
                throw ValidationError("cannot write \(path)")
            }
            self.handle = handle
            ownsHandle = true
        } else {
            handle = FileHandle.standardOutput
            ownsHandle = false
        }
    }

    func write(line: String) {
        buffer.append(contentsOf: line.utf8)
        buffer.append(UInt8(ascii: "\n"))
        if buffer.count > 1 << 16 { flush() }
    }

    func flush() {
        handle.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }

    func close() {
        flush()
        if ownsHandle { try? handle.close() }
    }
}
