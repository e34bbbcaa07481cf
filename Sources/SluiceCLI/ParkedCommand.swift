import ArgumentParser
import Foundation
import Logging
import Sluice

/// `parked`: the keys `run --on-poison park` parked, and what an operator does about them: list
/// them, show a key's waiting records, release a key after the fix (its records run through the
/// handlers in order), or discard its records.
///
/// Mounted beside ``RunCommand`` and ``ReplayCommand``: it needs the service's handlers, schemas
/// and store.
public struct ParkedCommand<Definition: ConsumerServiceDefinition>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "parked",
            abstract: "List, show, release or discard the keys parked by `run --on-poison park`.",
            subcommands: [List.self, Show.self, Release.self, Discard.self])
    }

    public init() {}

    /// What every `parked` command takes: replay's flags for reaching the store, the schemas
    /// and the dead-letter topic, and `--topic` to narrow to one topic.
    struct Options: ParsableArguments {
        @Option(help: "The consumer group the keys are parked for (the live service's group).")
        var group: String

        @Option(help: "The dedupe store: a SQLite file path or a postgres:// URL.")
        var database: String

        @Option(name: .customLong("topic"), help: "Only keys of this topic.")
        var topic: String?

        @Option(name: .customLong("schemas"), help: "The EventSchemas directory.")
        var schemasDirectory: String?

        @Option(name: .customLong("bootstrap-servers"), help: "Kafka brokers (accepted as replay takes them; parked records are read from the store).")
        var bootstrapServers: String?

        @Option(name: .customLong("dead-letter-topic"), help: "Accepted as replay takes it; a release writes no dead letter (the head record's letter exists).")
        var deadLetterTopic: String?

        @Option(name: [.customShort("X"), .customLong("property")], help: "A librdkafka property, NAME=VALUE (accepted as replay takes it).")
        var properties: [String] = []

        @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
        var logLevel: String = "warning"

        func validate() throws {
            guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
            for property in properties where !property.contains("=") {
                throw ValidationError("--property takes NAME=VALUE, got '\(property)'")
            }
        }

        var logger: Logger {
            var logger = Logger(label: "sluice.parked")
            logger.logLevel = Logger.Level(rawValue: logLevel) ?? .warning
            return logger
        }

        func openStore() async throws -> Definition.Store {
            try await Definition.openStore(database: database, logger: logger)
        }

        /// The parked keys of the group, of `--topic` when given, and of `key` when given.
        func keys(in store: Definition.Store, matching key: ParkingKey? = nil) async throws -> [ParkedKey] {
            let group = self.group
            let topic = self.topic
            let all = try await store.withTransaction { try await $0.parkedKeys(group: group, topic: topic) }
            return key.map { key in all.filter { $0.key == key } } ?? all
        }
    }

    static func parseKey(_ text: String) throws -> ParkingKey {
        guard let key = ParkingKey(argument: text) else {
            throw ValidationError("'\(text)' is not a key: hex: takes an even number of hex digits")
        }
        return key
    }

    static func line(_ key: ParkedKey) -> String {
        var line = "\(key.topic) \(key.key) records=\(key.records)"
        if let oldest = key.oldestOffset { line += " oldest=\(key.partition):\(oldest.rawValue)" }
        line += " code=\(key.failure.code) parked_at=\(rfc3339(key.parkedAt))"
        if key.failure.failedAt != key.parkedAt { line += " last_failed_at=\(rfc3339(key.failure.failedAt))" }
        if let claim = key.releaseClaim { line += " releasing=\(claim)" }
        return line
    }

    static func rfc3339(_ date: Date) -> String {
        // In UTC with its `Z`, to the millisecond: a time without its zone is ambiguous.
        date.formatted(
            .iso8601.year().month().day().dateSeparator(.dash).time(includingFractionalSeconds: true).timeSeparator(.colon)
                .timeZone(separator: .omitted))
    }

    /// `parked list`: one line per key, beginning with its topic and key.
    struct List: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "One line per parked key: topic, key, records waiting, oldest offset, the failure's code and time.")
        }

        @OptionGroup var options: Options

        init() {}

        func run() async throws {
            let store = try await options.openStore()
            for key in try await options.keys(in: store) { print(ParkedCommand.line(key)) }
        }
    }

    /// `parked show KEY`: the key's failure and its waiting records, head first.
    struct Show: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(abstract: "A parked key's failure and its waiting records, head first (--snapshot: as snapshot lines).")
        }

        @OptionGroup var options: Options

        @Argument(help: "The key, as `parked list` prints it (hex:… for bytes that are not text).")
        var key: String

        @Flag(name: .customLong("snapshot"), help: "Print the records as snapshot lines (all their bytes; `replay --snapshot` reads them).")
        var snapshot = false

        init() {}

        func run() async throws {
            let store = try await options.openStore()
            let key = try ParkedCommand.parseKey(self.key)
            let keys = try await options.keys(in: store, matching: key)
            guard !keys.isEmpty else {
                throw SluiceError(code: .keyNotParked, message: "key \(key) is not parked for group \(options.group)")
            }
            let group = options.group
            for parked in keys {
                let records = try await store.withTransaction {
                    try await $0.parkedRecords(group: group, topic: parked.topic, key: parked.key, limit: nil)
                }
                if snapshot {
                    for record in records { print(SnapshotRecordCoding.encode(record.record)) }
                    continue
                }
                print(ParkedCommand.line(parked))
                print("  failure: \(parked.failure.code)\(parked.failure.handler.map { " in handler \($0)" } ?? ""): \(parked.failure.message)")
                for record in records {
                    let ids = Self.identifiers(record.record.value)
                    print("  \(record.record.partition):\(record.record.offset.rawValue) \(ids.type ?? "-") \(ids.id ?? "-") parked_at=\(ParkedCommand.rfc3339(record.parkedAt))")
                }
            }
        }

        /// `event_type` and `event_id` of a value, when it is JSON that has them (for display only).
        static func identifiers(_ value: [UInt8]?) -> (type: String?, id: String?) {
            guard let value, case .object(let object)? = try? JSONParser.parse(value) else { return (nil, nil) }
            func string(_ name: String) -> String? { if case .string(let text) = object[name] { text } else { nil } }
            return (string("event_type"), string("event_id"))
        }
    }

    /// `parked release KEY|--all [--dry-run]`: runs the keys' waiting records through the handlers in order.
    struct Release: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(
                abstract: "Run a parked key's records through the handlers, head first, and release the key.",
                discussion: """
                    Each record runs in a store transaction with the usual dedupe (what was processed before is \
                    skipped) that also takes it out of the key's sequence; records a running service appends meanwhile \
                    run too. When one fails again the key stays parked from that record on, and the command says which \
                    and why (exit status 1). One release of a key at a time: a second one, from any process, is refused \
                    while the first runs (PARKED_RELEASE_IN_PROGRESS).
                    """)
        }

        @OptionGroup var options: Options

        @Argument(help: "The key, as `parked list` prints it.")
        var key: String?

        @Flag(name: .customLong("all"), help: "Release every parked key (of --topic, when given).")
        var all = false

        @Flag(name: .customLong("dry-run"), help: "Say what would run, in order; run nothing.")
        var dryRun = false

        init() {}

        func validate() throws {
            guard (key != nil) != all else { throw ValidationError("give a KEY or --all") }
        }

        func run() async throws {
            let logger = options.logger
            let store = try await options.openStore()
            let keys = try await options.keys(in: store, matching: try key.map(ParkedCommand.parseKey))
            if keys.isEmpty {
                if let key { throw SluiceError(code: .keyNotParked, message: "key \(key) is not parked for group \(options.group)") }
                print("no parked keys")
                return
            }
            let group = options.group
            if dryRun {
                for parked in keys {
                    let records = try await store.withTransaction {
                        try await $0.parkedRecords(group: group, topic: parked.topic, key: parked.key, limit: nil)
                    }
                    print("would release \(parked.topic) \(parked.key): \(records.count) records, in this order:")
                    for record in records {
                        let ids = Show.identifiers(record.record.value)
                        print("  \(record.record.partition):\(record.record.offset.rawValue) \(ids.type ?? "-") \(ids.id ?? "-")")
                    }
                }
                return
            }
            let registry = try SchemaRegistry(directory: options.schemasDirectory ?? Definition.schemasDirectory)
            let pipeline = EventPipeline(
                configuration: .init(group: group), decoder: EnvelopeDecoder(registry: registry),
                upcasters: try UpcasterChain(registry: registry, upcasters: Definition.upcasters()), router: Definition.router(),
                store: store, deadLetterSink: UnavailableDeadLetterSink(), logger: logger)
            let claimant = "\(ProcessInfo.processInfo.hostName):\(getpid())"
            var failed = false
            for parked in keys {
                do {
                    let release = try await pipeline.releaseParked(topic: parked.topic, key: parked.key, claimant: claimant)
                    let counts = "\(release.handled) handled, \(release.duplicates) already processed, \(release.skipped) skipped"
                    if release.isReleased {
                        print("released \(parked.topic) \(parked.key): \(counts)")
                        logger.notice("parked key released", metadata: ["topic": "\(parked.topic)", "parking.key": "\(parked.key)"])
                    } else if let failure = release.failure {
                        failed = true
                        print("""
                            still parked \(parked.topic) \(parked.key) from \(failure.partition):\(failure.offset.rawValue): \
                            \(failure.reason.code): \(failure.reason.message) (\(counts) before it; \(release.remaining) records wait)
                            """)
                    } else {
                        failed = true
                        print("interrupted \(parked.topic) \(parked.key): \(counts); \(release.remaining) records wait")
                    }
                } catch let error as SluiceError where error.code == .parkedReleaseInProgress || error.code == .keyNotParked {
                    failed = true
                    print("not released \(parked.topic) \(parked.key): \(error.code): \(error.message)")
                }
            }
            if failed { throw ExitCode(1) }
        }
    }

    /// `parked discard KEY`: drops a key's waiting records (its dead letters remain).
    struct Discard: AsyncParsableCommand {
        static var configuration: CommandConfiguration {
            CommandConfiguration(
                abstract: "Drop a parked key's waiting records and release the key; recorded with who and when.",
                discussion: "The records are not handled. The head record's dead letter remains in the dead-letter topic.")
        }

        @OptionGroup var options: Options

        @Argument(help: "The key, as `parked list` prints it.")
        var key: String

        @Option(name: .customLong("by"), help: "Who discards (recorded in the store; default: $USER@host).")
        var actor: String?

        init() {}

        func run() async throws {
            let logger = options.logger
            let store = try await options.openStore()
            let key = try ParkedCommand.parseKey(self.key)
            let keys = try await options.keys(in: store, matching: key)
            guard !keys.isEmpty else { throw SluiceError(code: .keyNotParked, message: "key \(key) is not parked for group \(options.group)") }
            let actor = self.actor ?? "\(ProcessInfo.processInfo.environment["USER"] ?? "unknown")@\(ProcessInfo.processInfo.hostName)"
            let group = options.group
            for parked in keys {
                let now = Date()
                let dropped = try await store.withTransaction {
                    try await $0.discardParked(group: group, topic: parked.topic, key: parked.key, by: actor, at: now)
                }
                logger.warning("parked key discarded", metadata: [
                    "topic": "\(parked.topic)", "parking.key": "\(parked.key)", "records": "\(dropped)", "by": "\(actor)",
                ])
                print("discarded \(parked.topic) \(parked.key): \(dropped) records dropped (by \(actor))")
            }
        }
    }
}
