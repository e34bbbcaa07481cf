import Foundation
import Logging
import Sluice

/// Reads fixed ranges of a topic's partitions, for replays and exports: no consumer group is
/// joined and nothing is committed.
///
/// ``open(bootstrapServers:topics:plan:properties:logger:)`` resolves the plan against the
/// cluster once: starts from offsets, timestamps or the low watermark, ends from offsets,
/// timestamps or the high watermark at that moment (so records produced while reading are left
/// out). ``batches`` then delivers exactly the records of those ranges, in offset order per
/// partition, and finishes when every partition reached its end.
public final class KafkaRangeReader: Sendable {
    /// Per partition, the offsets to read: `lowerBound` first, `upperBound` excluded.
    public let ranges: [TopicPartition: Range<Offset>]
    /// Per partition whose range was resolved from timestamps, what the broker answered and what
    /// the records read must therefore look like (see ``TimestampLookupCheck``).
    let checks: [TopicPartition: TimestampLookupCheck]
    private let configuration: KafkaConsumerConfiguration
    private let consumer: KafkaConsumer
    private let logger: Logger

    private init(
        ranges: [TopicPartition: Range<Offset>], checks: [TopicPartition: TimestampLookupCheck], configuration: KafkaConsumerConfiguration,
        consumer: KafkaConsumer, logger: Logger
    ) {
        self.ranges = ranges
        self.checks = checks
        self.configuration = configuration
        self.consumer = consumer
        self.logger = logger
    }

    /// Resolves `plan` for `topics` and assigns the partitions with something to read.
    ///
    /// - Throws: ``KafkaError`` when the cluster cannot be asked, or a `SluiceError` with
    ///   `SluiceError/Code/replayPlanInvalid` when a topic does not exist or the plan names a
    ///   partition the topic does not have.
    public static func open(
        bootstrapServers: [String], topics: [String], plan: ReplayPlan, properties: [String: String] = [:], logger: Logger
    ) async throws -> KafkaRangeReader {
        let admin = try KafkaAdmin(bootstrapServers: bootstrapServers, properties: properties, logger: logger)
        let counts = try await admin.listTopics()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: bootstrapServers, groupID: nil)
        for (name, value) in properties { configuration.properties[name] = value }
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        do {
            var partitions: [TopicPartition] = []
            for topic in topics {
                guard let count = counts[topic] else {
                    throw SluiceError(code: .replayPlanInvalid, message: "topic \(topic) does not exist")
                }
                let numbers = (0..<Int32(count)).filter { plan.partitions?.contains($0) ?? true }
                for named in plan.partitions ?? [] where named >= Int32(count) {
                    throw SluiceError(code: .replayPlanInvalid, message: "topic \(topic) has no partition \(named) (it has \(count))")
                }
                partitions += numbers.map { TopicPartition(topic: topic, partition: $0) }
            }
            var watermarks: [TopicPartition: (low: Offset, high: Offset)] = [:]
            for partition in partitions { watermarks[partition] = try await consumer.watermarks(for: partition) }

            var startTimes: [TopicPartition: Int64] = [:]
            var endTimes: [TopicPartition: Int64] = [:]
            for partition in partitions {
                if case .timestamp(let date) = plan.start(of: partition.partition) { startTimes[partition] = Self.milliseconds(date) }
                // The first record after T ends a range that includes T.
                if case .timestamp(let date) = plan.end(of: partition.partition) { endTimes[partition] = Self.milliseconds(date) + 1 }
            }
            let startsByTime = startTimes.isEmpty ? [:] : try await consumer.offsets(forTimestamps: startTimes)
            let endsByTime = endTimes.isEmpty ? [:] : try await consumer.offsets(forTimestamps: endTimes)

            var ranges: [TopicPartition: Range<Offset>] = [:]
            var checks: [TopicPartition: TimestampLookupCheck] = [:]
            for partition in partitions {
                let (low, high) = watermarks[partition]!
                let resolved = resolve(
                    start: plan.start(of: partition.partition), end: plan.end(of: partition.partition), low: low, high: high,
                    startAnswer: startsByTime[partition], endAnswer: endsByTime[partition])
                ranges[partition] = resolved.range
                checks[partition] = resolved.check
            }
            let reader = KafkaRangeReader(ranges: ranges, checks: checks, configuration: configuration, consumer: consumer, logger: logger)
            let assignment = reader.fetchRanges.mapValues(\.lowerBound)
            if !assignment.isEmpty { try await consumer.assign(assignment) }
            logger.debug("replay ranges resolved", metadata: ["ranges": "\(ranges)", "checks": "\(checks)"])
            return reader
        } catch {
            try? await consumer.close()
            throw error
        }
    }

    /// One partition's range from the plan, its watermarks and the broker's answers for its
    /// timestamps (`startAnswer` for the start time, `endAnswer` for the millisecond after the
    /// end time; `nil` where the plan does not use a timestamp), with the check of those answers.
    static func resolve(
        start planStart: ReplayStart, end planEnd: ReplayEnd, low: Offset, high: Offset, startAnswer: Offset?, endAnswer: Offset?
    ) -> (range: Range<Offset>, check: TimestampLookupCheck?) {
        var check = TimestampLookupCheck()
        let start: Offset
        switch planStart {
        case .beginning: start = low
        case .offset(let offset): start = max(offset, low)
        case .timestamp(let date):
            let answer = startAnswer ?? .end
            check.start = .init(time: milliseconds(date), offset: answer)
            start = answer == .end ? high : answer
        }
        let end: Offset
        switch planEnd {
        case .highWatermark: end = high
        case .offset(let offset): end = min(offset.next, high)
        case .timestamp(let date):
            let answer = endAnswer ?? .end
            check.end = .init(time: milliseconds(date), offset: answer)
            end = answer == .end ? high : min(answer, high)
        }
        let range = start..<max(start, end)
        guard check.start != nil || check.end != nil else { return (range, nil) }
        if range.isEmpty {
            // The broker says no record lies in the time range. One record is read to check it: the
            // one it gave for the start (or, failing that, for the end), when the partition has it.
            let probe = [check.start?.offset, check.end?.offset].compactMap { $0 }.first { $0 != .end && $0 >= low && $0 < high }
            check.probe = probe.map { $0..<$0.next }
        }
        return (range, check)
    }

    /// Per partition, what is fetched: its range, or for an empty range resolved from timestamps,
    /// the one record read to check the broker's answer.
    var fetchRanges: [TopicPartition: Range<Offset>] {
        Self.fetchRanges(ranges, checks: checks)
    }

    static func fetchRanges(
        _ ranges: [TopicPartition: Range<Offset>], checks: [TopicPartition: TimestampLookupCheck]
    ) -> [TopicPartition: Range<Offset>] {
        var result = ranges.filter { !$0.value.isEmpty }
        for (partition, check) in checks where result[partition] == nil {
            if let probe = check.probe { result[partition] = probe }
        }
        return result
    }

    /// The partitions with something to read (records of their ranges, or a record that checks
    /// the broker's answer for an empty one).
    public var partitionsToRead: [TopicPartition] { fetchRanges.keys.sorted() }

    /// A reader of `partitions` only, with the ranges and checks resolved here (nothing is asked
    /// of the broker again): for reading partitions one after another. This reader may be closed
    /// first.
    public func reader(for partitions: [TopicPartition]) async throws -> KafkaRangeReader {
        let wanted = Set(partitions)
        let consumer = try KafkaConsumer(configuration: configuration, logger: logger)
        let reader = KafkaRangeReader(
            ranges: ranges.filter { wanted.contains($0.key) }, checks: checks.filter { wanted.contains($0.key) },
            configuration: configuration, consumer: consumer, logger: logger)
        do {
            let assignment = reader.fetchRanges.mapValues(\.lowerBound)
            if !assignment.isEmpty { try await consumer.assign(assignment) }
        } catch {
            try? await consumer.close()
            throw error
        }
        return reader
    }

    /// The records of ``ranges``, in batches; finishes when every partition reached its end.
    /// Read it once.
    ///
    /// A partition ends when the last offset of its range, or any offset past it, was read (a
    /// compacted-away last offset is passed that way), or, for a range ending in offsets that
    /// hold no record for the application (a transaction's commit or abort marker, aborted
    /// records under `read_committed`), when the consumer's position is past the end with every
    /// record below it delivered: checked whenever no batch came for `idleCheckInterval`.
    public var batches: AsyncThrowingStream<[Record], any Error> {
        let ranges = self.ranges
        let checks = self.checks
        let consumer = self.consumer
        let logger = self.logger
        return AsyncThrowingStream { continuation in
            let task = Task {
                do {
                    try await Self.read(ranges, checks: checks, from: consumer, idleCheck: Self.idleCheckInterval, logger: logger) { continuation.yield($0) }
                    continuation.finish()
                } catch {
                    continuation.finish(throwing: error)
                }
            }
            continuation.onTermination = { _ in task.cancel() }
        }
    }

    /// How long the reader waits for a batch before it asks how far the consumer has read.
    static let idleCheckInterval: Duration = .milliseconds(500)

    /// Hands `deliver` the records of `ranges` until every partition reached its end; returns
    /// early when the task is cancelled.
    ///
    /// Every record seen, delivered or not, is held against its partition's `checks`; the first
    /// that contradicts the broker's answer stops the read with the error, before its batch is
    /// delivered.
    static func read(
        _ ranges: [TopicPartition: Range<Offset>], checks: [TopicPartition: TimestampLookupCheck] = [:],
        from consumer: some RangeReaderConsumer, idleCheck: Duration, logger: Logger, deliver: ([Record]) -> Void
    ) async throws {
        let fetched = fetchRanges(ranges, checks: checks)
        var pending = Set(fetched.keys)
        while !pending.isEmpty && !Task.isCancelled {
            switch try await nextBatch(of: consumer, within: idleCheck) {
            case .batch(let batch):
                var finished: [TopicPartition] = []
                var inRange: [Record] = []
                for record in batch {
                    try checks[record.topicPartition]?.verify(record)
                    guard let range = fetched[record.topicPartition] else { continue }
                    // The last offset of the range read (or anything past it: compaction leaves gaps).
                    if record.offset.next >= range.upperBound, pending.remove(record.topicPartition) != nil {
                        finished.append(record.topicPartition)
                    }
                    if ranges[record.topicPartition]?.contains(record.offset) ?? false { inRange.append(record) }
                }
                if !inRange.isEmpty { deliver(inRange) }
                // Nothing more is wanted from them: stop fetching what lies past their ends.
                if !finished.isEmpty && !pending.isEmpty { await stopFetching(finished, from: consumer, logger: logger) }
            case .idle:
                let positions = try await consumer.drainedPositions(Array(pending))
                let reached = positions.filter { partition, position in fetched[partition].map { position >= $0.upperBound } ?? false }
                if !reached.isEmpty {
                    logger.debug(
                        "partitions read to ends that hold no record (transaction markers)",
                        metadata: ["partitions": "\(reached.keys.sorted())"])
                    pending.subtract(reached.keys)
                    if !pending.isEmpty { await stopFetching(Array(reached.keys), from: consumer, logger: logger) }
                }
            case .ended:
                if Task.isCancelled { return }
                throw KafkaError.clientClosed(
                    "the consumer stopped before the ranges were read (\(pending.count) partition(s) unfinished)")
            }
        }
    }

    /// Pauses partitions whose ranges are read. Only an economy: records past a range's end are
    /// filtered out anyway, so a failed pause is logged and reading goes on.
    private static func stopFetching(_ partitions: [TopicPartition], from consumer: some RangeReaderConsumer, logger: Logger) async {
        do {
            try await consumer.pause(partitions)
        } catch {
            logger.debug("could not pause partitions read to their ends", metadata: ["partitions": "\(partitions)", "error": "\(error)"])
        }
    }

    private enum Wait: Sendable {
        case batch([Record])
        case idle
        case ended
    }

    /// The consumer's next batch, or `.idle` when none came within `timeout`. A batch that arrives
    /// while the wait is given up is returned, never dropped.
    private static func nextBatch(of consumer: some RangeReaderConsumer, within timeout: Duration) async throws -> Wait {
        try await withThrowingTaskGroup(of: Wait.self) { group in
            group.addTask { try await consumer.nextBatch().map(Wait.batch) ?? .ended }
            group.addTask {
                try? await Task.sleep(for: timeout)
                return .idle
            }
            var outcome = try await group.next() ?? .ended
            group.cancelAll()
            // The cancelled wait for a batch ends with `.ended`, unless a batch reached it first.
            while let other = try await group.next() {
                if case .batch = other { outcome = other }
            }
            return outcome
        }
    }

    /// The high watermark-based end of each partition (for progress displays).
    public var ends: [TopicPartition: Offset] { ranges.mapValues(\.upperBound) }

    /// Closes the consumer (nothing was committed).
    public func close() async {
        try? await consumer.close()
    }

    static func milliseconds(_ date: Date) -> Int64 { Int64((date.timeIntervalSince1970 * 1_000).rounded(.down)) }
}

/// What the broker answered when a range was resolved from timestamps, and the rule that records
/// read from the partition must keep.
///
/// Kafka's contract for a by-timestamp lookup (ListOffsets, `offsetsForTimes`) is: the answer is
/// the *earliest* offset whose timestamp is at or after the time asked for, or none. With
/// `CreateTime` a partition's timestamps need not increase with its offsets, so a record past the
/// answer may legitimately be stamped earlier than the time asked for; what the contract does
/// guarantee, and what is checked, is:
///
/// - start (`--from-timestamp T`, answer `S`): the record **at** `S` is stamped at or after `T`.
///   (Every record before `S` is stamped before `T` too, but reading `S - 1` would cost a fetch
///   of its own, so that is not checked.)
/// - end (`--to-timestamp T`: the lookup is for `T` + 1 ms, answer `E`): every record **before**
///   `E` is stamped at or before `T` (so every record of the range is, whatever the order of its
///   timestamps), and the record **at** `E`, when a fetch happens to bring it, is stamped after
///   `T`. An answer of "none" means no record of the partition is stamped after `T`.
/// - a range that comes out empty (the broker says no record lies in the time range) is checked by
///   reading the one record at `S` (or, when the start was not a timestamp, at `E`).
///
/// A record without a timestamp is not checked. A record that breaks a rule stops the read with
/// `SluiceError/Code/replayTimestampLookupContradicted`: the range resolved from such an answer
/// is not the one asked for, and must not be processed as if it were.
struct TimestampLookupCheck: Sendable, Hashable, CustomStringConvertible {
    /// A time (milliseconds since the epoch) and the offset the broker answered for it
    /// (``Offset/end`` for "none").
    struct Answer: Sendable, Hashable {
        var time: Int64
        var offset: Offset
    }

    /// `--from-timestamp`, and the broker's first offset stamped at or after it.
    var start: Answer?
    /// `--to-timestamp` (inclusive), and the broker's first offset stamped after it.
    var end: Answer?
    /// For a range that came out empty: the one offset read to check the answer.
    var probe: Range<Offset>?

    var description: String {
        "start \(start.map { "\($0.time)→\($0.offset.rawValue)" } ?? "-"), end \(end.map { "\($0.time)→\($0.offset.rawValue)" } ?? "-")"
    }

    /// Throws when `record` contradicts the broker's answers.
    func verify(_ record: Record) throws(SluiceError) {
        guard let stamped = record.timestamp?.milliseconds else { return }
        let partition = record.topicPartition
        if let start, record.offset == start.offset, stamped < start.time {
            throw Self.contradicted(
                "\(partition): for --from-timestamp \(Self.text(start.time)) the broker gave offset \(start.offset.rawValue) "
                    + "(the first record stamped at or after it), but the record at \(record.offset.rawValue) is stamped "
                    + "\(Self.text(stamped)), before it")
        }
        if let end {
            let before = end.offset == .end || record.offset < end.offset
            if before, stamped > end.time {
                let answer = end.offset == .end ? "no record stamped after it" : "offset \(end.offset.rawValue) as the first record stamped after it"
                throw Self.contradicted(
                    "\(partition): for --to-timestamp \(Self.text(end.time)) the broker gave \(answer), but the record at "
                        + "\(record.offset.rawValue) is stamped \(Self.text(stamped)), after it")
            }
            if record.offset == end.offset, stamped <= end.time {
                throw Self.contradicted(
                    "\(partition): for --to-timestamp \(Self.text(end.time)) the broker gave offset \(end.offset.rawValue) "
                        + "(the first record stamped after it), but the record at \(record.offset.rawValue) is stamped "
                        + "\(Self.text(stamped)), not after it")
            }
        }
    }

    private static func contradicted(_ what: String) -> SluiceError {
        SluiceError(
            code: .replayTimestampLookupContradicted,
            message: what + "; the broker's by-timestamp lookup (ListOffsets) cannot be trusted here: "
                + "replay or export by --from-offset/--to-offset instead")
    }

    /// `2026-11-22T10:00:00.250Z (1795000000250 ms)`.
    static func text(_ milliseconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return "\(formatter.string(from: Date(timeIntervalSince1970: Double(milliseconds) / 1_000))) (\(milliseconds) ms)"
    }
}

/// What ``KafkaRangeReader`` needs of its consumer (``KafkaConsumer``; a seam for tests of the
/// end-of-range rules, whose gaps the embedded broker cannot produce: it writes no transaction
/// markers and never compacts).
protocol RangeReaderConsumer: Sendable {
    /// The next batch; `nil` when the consumer stopped or the calling task was cancelled.
    func nextBatch() async throws -> [Record]?
    /// Positions of the partitions whose fetched records were all delivered (see
    /// ``KafkaConsumer/drainedPositions(_:)``).
    func drainedPositions(_ partitions: [TopicPartition]) async throws -> [TopicPartition: Offset]
    /// Stops fetching for `partitions`.
    func pause(_ partitions: [TopicPartition]) async throws
}

extension KafkaConsumer: RangeReaderConsumer {
    func nextBatch() async throws -> [Record]? {
        var iterator = batches.makeAsyncIterator()
        return try await iterator.next()
    }
}
