import ArgumentParser
import CoreMetrics
import Foundation
import Logging
import ServiceLifecycle
import Sluice
import SluiceHTTP
import SluiceKafka
import Synchronization

/// `replay`: run history through the service's handlers, beside the live consumers and without
/// disturbing them.
///
/// It reads fixed ranges (partitions assigned directly, no group joined, nothing committed to
/// Kafka, no offsets stored for the group) or a snapshot file, runs them through the same decoder,
/// lanes and handlers as `run`, shows progress per partition, and ends with a summary. The exit
/// status is 1 when anything was (or, with `--dry-run`, would be) dead-lettered or left without
/// an outcome, when the source failed (a broker answer contradicted by the records read:
/// `REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED`), or when no record matched the range unless
/// `--allow-empty` was given; 0 otherwise.
public struct ReplayCommand<Definition: ConsumerServiceDefinition>: AsyncParsableCommand {
    public static var configuration: CommandConfiguration {
        CommandConfiguration(
            commandName: "replay",
            abstract: "Replay history (offset or time ranges of topics, or a snapshot file) through the handlers.",
            discussion: """
                Without --from-*/--to-*, every partition is replayed from its first retained record to the high \
                watermark at start. --dedupe respect (default) skips events the group already processed; \
                --dedupe reprocess runs the handlers again (they see context.isReplay). Nothing is committed to the \
                group. Poison records go to the dead-letter topic as in `run` (none with --dry-run). A replay that \
                matches no record fails unless --allow-empty is given.
                """)
    }

    @Option(name: .customLong("bootstrap-servers"), help: "Kafka brokers, host:port[,host:port…] (not needed with --snapshot).")
    var bootstrapServers: String?

    @Option(name: .customLong("topic"), help: "A topic to replay (repeatable; a dead-letter topic works too).")
    var topics: [String] = []

    @Option(help: "The consumer group whose processed events count (dedupe) — the live service's group.")
    var group: String

    @Option(help: "The dedupe store: a SQLite file path or a postgres:// URL.")
    var database: String

    @Option(name: .customLong("dead-letter-topic"), help: "One dead-letter topic for every replayed topic (default: <topic>.DLT).")
    var deadLetterTopic: String?

    @Option(name: .customLong("from-offset"), help: "PARTITION:OFFSET, the first offset replayed in that partition (repeatable).")
    var fromOffsets: [String] = []

    @Option(name: .customLong("to-offset"), help: "PARTITION:OFFSET, the last offset replayed in that partition, inclusive (repeatable).")
    var toOffsets: [String] = []

    @Option(name: .customLong("from-timestamp"), help: "RFC 3339: replay records stamped at or after this time.")
    var fromTimestamp: String?

    @Option(name: .customLong("to-timestamp"), help: "RFC 3339: replay records stamped at or before this time.")
    var toTimestamp: String?

    @Option(help: "respect: skip events already processed (default); reprocess: run handlers again.")
    var dedupe: String = "respect"

    @Flag(name: .customLong("dry-run"), help: "Decode, validate and route; call no handler, write no dead letter.")
    var dryRun = false

    @Flag(name: .customLong("allow-empty"), help: "Succeed when no record matches the range (by default that fails).")
    var allowEmpty = false

    @Option(name: .customLong("snapshot"), help: "Replay this snapshot file (JSON Lines, as `sluice export` writes) instead of topics.")
    var snapshot: String?

    @Option(name: .customLong("checkpoint"), help: "Keep the replay's position in this file, so an interrupted replay resumes.")
    var checkpoint: String?

    @Option(name: .customLong("schemas"), help: "The EventSchemas directory.")
    var schemasDirectory: String?

    @Option(name: [.customShort("X"), .customLong("property")], help: "A librdkafka property, NAME=VALUE (repeatable).")
    var properties: [String] = []

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "warning"

    @Flag(name: .customLong("ignore-parking"), help: "Replay the records of parked keys too (by default they are skipped and listed).")
    var ignoreParking = false

    @Option(name: .customLong("park-by"), help: "key or subject: what the live service parks by (as its run --park-by).")
    var parkBy: String = "key"

    @OptionGroup var operations: OperationsOptions

    public init() {}

    public func validate() throws {
        guard snapshot != nil || !topics.isEmpty else { throw ValidationError("give --topic (repeatable) or --snapshot FILE") }
        guard snapshot == nil || topics.isEmpty else { throw ValidationError("--snapshot and --topic are exclusive") }
        guard snapshot != nil || bootstrapServers != nil else { throw ValidationError("--bootstrap-servers is needed to replay topics") }
        guard EventPipeline<Definition.Store>.DedupeMode(rawValue: dedupe) != nil else {
            throw ValidationError("--dedupe is respect or reprocess, not '\(dedupe)'")
        }
        for property in properties where !property.contains("=") {
            throw ValidationError("--property takes NAME=VALUE, got '\(property)'")
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
        guard Parking.Scope(rawValue: parkBy) != nil else { throw ValidationError("--park-by is key or subject, not '\(parkBy)'") }
    }

    public func run() async throws {
        let logger = operations.format.logger(label: "sluice.replay", level: Logger.Level(rawValue: logLevel) ?? .warning)
        let endpointAddress = try operations.address()
        let prometheus = endpointAddress.map { _ in PrometheusMetrics() }
        let plan: ReplayPlan
        do {
            plan = try ReplayPlan(
                source: snapshot.map { .snapshot(path: $0) } ?? .topics(topics), fromOffsets: fromOffsets, toOffsets: toOffsets,
                fromTimestamp: fromTimestamp, toTimestamp: toTimestamp)
        } catch {
            throw ValidationError(error.description)
        }
        let registry = try SchemaRegistry(directory: schemasDirectory ?? Definition.schemasDirectory)
        let upcasters = try UpcasterChain(registry: registry, upcasters: Definition.upcasters())
        let store = try await Definition.openStore(database: database, logger: logger)

        var librdkafka: [String: String] = [:]
        for property in properties {
            let parts = property.split(separator: "=", maxSplits: 1).map(String.init)
            librdkafka[parts[0]] = parts[1]
        }
        let servers = bootstrapServers?.split(separator: ",").map(String.init) ?? []
        var producerConfiguration = KafkaProducerConfiguration(bootstrapServers: servers)
        for (name, value) in librdkafka where name.hasPrefix("security.") || name.hasPrefix("sasl.") || name.hasPrefix("ssl.") {
            producerConfiguration.properties[name] = value
        }
        let producer = dryRun || servers.isEmpty ? nil : try KafkaProducer(configuration: producerConfiguration, logger: logger)
        let sink: any DeadLetterSink = producer.map { KafkaDeadLetterSink(producer: $0) } ?? UnavailableDeadLetterSink()

        var pipelineConfiguration = ReplayRunner<Definition.Store>.replayConfiguration(
            group: group, dedupe: EventPipeline<Definition.Store>.DedupeMode(rawValue: dedupe) ?? .respect, dryRun: dryRun)
        if let deadLetterTopic {
            for topic in topics { pipelineConfiguration.deadLetters.topics[topic] = deadLetterTopic }
        }
        pipelineConfiguration.parking = ignoreParking ? .off : Parking(mode: .skip, scope: Parking.Scope(rawValue: parkBy) ?? .key)
        let pipeline = EventPipeline(
            configuration: pipelineConfiguration, decoder: EnvelopeDecoder(registry: registry), upcasters: upcasters,
            router: Definition.router(), store: store, deadLetterSink: sink, logger: logger,
            metricsFactory: prometheus.map { $0.factory(alongside: MetricsSystem.factory) } ?? MetricsSystem.factory)
        var runnerConfiguration = ReplayRunner<Definition.Store>.Configuration()
        runnerConfiguration.checkpointPath = checkpoint
        let runner = ReplayRunner(pipeline: pipeline, configuration: runnerConfiguration, logger: logger)
        let format = operations.format
        // With JSON logs, standard error is read by a log pipeline: the progress lines are JSON
        // objects too (as always shown as the replay goes, whatever --log-level says).
        let display = ReplayProgressDisplay(
            interactive: format == .text && isatty(STDERR_FILENO) == 1,
            logger: format == .json ? format.logger(label: "sluice.replay", level: .notice) : nil)
        var progress: @Sendable (ReplayProgress) -> Void = display.show
        var endpoint: (group: ServiceGroup, task: Task<Void, any Error>, source: ReplayOperationsSource<Definition.Store>)?
        if let endpointAddress, let prometheus {
            let source = ReplayOperationsSource(pipeline: pipeline, store: store, group: group)
            progress = { value in
                source.update(value)
                display.show(value)
            }
            let started = try await Self.startEndpoint(address: endpointAddress, source: source, metrics: prometheus, logger: logger)
            endpoint = (started.group, started.task, source)
        }

        var summary: ReplaySummary
        if let snapshot {
            // Every line is checked before anything is replayed: a bad line half-way must not
            // leave a half-replayed file behind.
            let count = try SnapshotReader(path: snapshot).validate()
            print("replaying \(snapshot) (\(count) records)\(dryRun ? " (dry run)" : ""), dedupe \(dedupe), group \(group)")
            let batches = SnapshotReader(path: snapshot).batches().map { batch in batch.filter(plan.contains) }
            summary = await Self.interruptible { [progress] in await runner.run(batches, progress: progress) }
        } else {
            let reader = try await KafkaRangeReader.open(bootstrapServers: servers, topics: topics, plan: plan, properties: librdkafka, logger: logger)
            print("replaying \(topics.joined(separator: ", "))\(dryRun ? " (dry run)" : ""), dedupe \(dedupe), group \(group)")
            for (partition, range) in reader.ranges.sorted(by: { $0.key < $1.key }) {
                print("  \(partition): offsets \(range.lowerBound.rawValue)..<\(range.upperBound.rawValue) (\(range.upperBound.rawValue - range.lowerBound.rawValue) records)")
            }
            summary = await Self.interruptible { [progress] in await runner.run(reader.batches, ends: reader.ends, progress: progress) }
            await reader.close()
        }
        if let endpoint {
            endpoint.source.finish()
            await endpoint.group.triggerGracefulShutdown()
            do {
                try await endpoint.task.value
            } catch {
                // The replay's outcome stands (its summary follows); the endpoint's failure is said.
                logger.warning("the operations endpoint ended with an error", metadata: ["error": "\(error)"])
            }
        }
        summary.dryRun = dryRun
        summary.parkedKeysSkipped = pipeline.parkedKeysSkipped
        summary.requiresRecords = !allowEmpty
        try? await producer?.close()
        display.finish()
        print(summary.rendered)
        if !summary.isSuccess { throw ExitCode(1) }
    }

    /// Starts the operations endpoint and returns its service group once it listens; the replay
    /// shuts the group down gracefully when it ends.
    ///
    /// - Throws: ``SluiceError`` (`HTTP_ADDRESS_UNAVAILABLE`) when it cannot listen: the replay
    ///   does not start without the endpoint it was asked for.
    static func startEndpoint(
        address: HTTPAddress, source: ReplayOperationsSource<Definition.Store>, metrics: PrometheusMetrics, logger: Logger
    ) async throws -> (group: ServiceGroup, task: Task<Void, any Error>) {
        // Settled once: by the first of "listening" and "failed", whichever the task reaches first.
        let started = Mutex<(result: Result<Void, any Error>?, continuation: CheckedContinuation<Void, any Error>?)>((nil, nil))
        let settle: @Sendable (Result<Void, any Error>) -> Void = { result in
            started.withLock { state -> CheckedContinuation<Void, any Error>? in
                guard state.result == nil else { return nil }
                state.result = result
                return state.continuation.take()
            }?.resume(with: result)
        }
        let endpoint = OperationsEndpoint(address: address, source: source, metrics: metrics, logger: logger) { _ in settle(.success(())) }
        let group = ServiceGroup(configuration: .init(services: [endpoint], logger: logger))
        let task = Task {
            do {
                try await group.run()
            } catch {
                settle(.failure(error))
                throw error
            }
        }
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
            let early = started.withLock { state -> Result<Void, any Error>? in
                if state.result == nil { state.continuation = continuation }
                return state.result
            }
            if let early { continuation.resume(with: early) }
        }
        return (group, task)
    }

    /// Runs `body`, cancelling it on SIGINT or SIGTERM so the replay stops after its in-flight
    /// records, writes its checkpoint, and still prints its summary.
    static func interruptible(_ body: @escaping @Sendable () async -> ReplaySummary) async -> ReplaySummary {
        let task = Task { await body() }
        let signals = [SIGINT, SIGTERM].map { number -> any DispatchSourceSignal in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number)
            source.setEventHandler { task.cancel() }
            source.resume()
            return source
        }
        let summary = await task.value
        for source in signals { source.cancel() }
        return summary
    }
}

/// A dry run, or a replay without brokers, writes no dead letters; a real one with none
/// reachable says so instead of losing them.
struct UnavailableDeadLetterSink: DeadLetterSink {
    func send(_ record: DeadLetterRecord) async throws {
        throw SluiceError(code: "DEAD_LETTER_UNAVAILABLE", message: "this replay has no broker to write dead letters to (give --bootstrap-servers)", isRetriable: true)
    }
}

/// Progress per partition on stderr: redrawn in place on a terminal, plain lines every few
/// seconds otherwise (logs, CI).
final class ReplayProgressDisplay: Sendable {
    private let interactive: Bool
    private let logger: Logger?
    private let state = Mutex<(lines: Int, last: ContinuousClock.Instant?)>((0, nil))

    /// - Parameter logger: Where the plain progress lines go as log entries (`notice`) instead of
    ///   raw lines, when standard error carries JSON logs.
    init(interactive: Bool, logger: Logger? = nil) {
        self.interactive = interactive
        self.logger = logger
    }

    @Sendable func show(_ progress: ReplayProgress) {
        let rows = progress.partitions.sorted { $0.key < $1.key }.map { partition, value -> String in
            let done = value.done
            if let end = value.end, let position = value.position {
                let remaining = max(0, end.rawValue - position.rawValue)
                return "  \(partition): \(done) done, at \(position.rawValue) of \(end.rawValue)\(remaining == 0 ? " ✓" : ", \(remaining) to go")"
            }
            return "  \(partition): \(done) done\(value.position.map { ", at \($0.rawValue)" } ?? "")"
        }
        state.withLock { state in
            if interactive {
                var text = state.lines > 0 ? "\u{1B}[\(state.lines)F" : ""
                for row in rows { text += "\u{1B}[2K" + row + "\n" }
                FileHandle.standardError.write(Data(text.utf8))
                state.lines = rows.count
            } else {
                let now = ContinuousClock.now
                if !progress.isFinal, let last = state.last, now - last < .seconds(5) { return }
                state.last = now
                let total = progress.partitions.values.reduce(0) { $0 + $1.done }
                if let logger {
                    logger.notice("replay progress", metadata: ["records.done": "\(total)", "partitions": "\(rows.count)"])
                } else {
                    FileHandle.standardError.write(Data("progress: \(total) records done over \(rows.count) partitions\n".utf8))
                }
            }
        }
    }

    func finish() {}
}
