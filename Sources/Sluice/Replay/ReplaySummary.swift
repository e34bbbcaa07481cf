/// What a replay did, per partition and in total.
public struct ReplaySummary: Sendable, Hashable {
    /// One partition's share.
    public struct PartitionSummary: Sendable, Hashable {
        /// The first and last offsets read.
        public var first: Offset?
        /// The last offset read.
        public var last: Offset?
        /// Records read (every outcome).
        public var read = 0
        /// Records whose handlers ran and committed (that would be handled, in a dry run: routed).
        public var handled = 0
        /// Records skipped because their event was processed before.
        public var duplicates = 0
        /// Records skipped by policy (no handler, unknown type when skipping).
        public var skipped = 0
        /// Records dead-lettered (would be, in a dry run).
        public var deadLettered = 0
        /// Records without an outcome (the replay was interrupted).
        public var abandoned = 0
        /// Records appended to a parked key's sequence (none in a replay, which never parks).
        public var parked = 0

        /// A summary with nothing counted yet.
        public init() {}

        mutating func add(_ record: Record, _ outcome: RecordOutcome) {
            if first == nil || record.offset < first! { first = record.offset }
            if last == nil || record.offset > last! { last = record.offset }
            read += 1
            switch outcome {
            case .handled: handled += 1
            case .duplicate: duplicates += 1
            case .skipped: skipped += 1
            case .deadLettered: deadLettered += 1
            case .abandoned: abandoned += 1
            case .parked: parked += 1
            }
        }
    }

    /// Per partition, what happened there.
    public var partitions: [TopicPartition: PartitionSummary] = [:]
    /// Dead-lettered records (would-be, in a dry run) by error code.
    public var deadLetteredByCode: [SluiceError.Code: Int] = [:]
    /// Records skipped by policy (unknown type when skipping, no handler) by code.
    public var skippedByCode: [SluiceError.Code: Int] = [:]
    /// Parked keys whose records the replay skipped (it respects parking unless
    /// `--ignore-parking`), per topic, with how many records of each.
    public var parkedKeysSkipped: [String: [ParkingKey: Int]] = [:]
    /// Whether the replay stopped before its end (SIGINT, an error of the source).
    public var interrupted = false
    /// Whether handlers were not called (`--dry-run`).
    public var dryRun = false
    /// Records of the source passed over because the checkpoint covers them (replayed before).
    public var alreadyReplayed = 0
    /// The error that stopped the source, if one did (``interrupted`` is then set too).
    public var failure: String?
    /// Whether a replay that matched no record fails (the replay command without
    /// `--allow-empty`). Default: `false`, an empty replay succeeds.
    public var requiresRecords = false

    public init() {}

    /// Counts `record`'s `outcome`.
    public mutating func add(_ record: Record, _ outcome: RecordOutcome) {
        partitions[record.topicPartition, default: PartitionSummary()].add(record, outcome)
        switch outcome {
        case .deadLettered(let code): deadLetteredByCode[code, default: 0] += 1
        case .skipped(let code): skippedByCode[code, default: 0] += 1
        default: break
        }
    }

    /// Records read, in all.
    public var read: Int { partitions.values.reduce(0) { $0 + $1.read } }
    /// Records handled, in all.
    public var handled: Int { partitions.values.reduce(0) { $0 + $1.handled } }
    /// Duplicates skipped, in all.
    public var duplicates: Int { partitions.values.reduce(0) { $0 + $1.duplicates } }
    /// Records skipped by policy, in all.
    public var skipped: Int { partitions.values.reduce(0) { $0 + $1.skipped } }
    /// Records dead-lettered, in all.
    public var deadLettered: Int { partitions.values.reduce(0) { $0 + $1.deadLettered } }
    /// Records left without an outcome, in all.
    public var abandoned: Int { partitions.values.reduce(0) { $0 + $1.abandoned } }

    /// Whether no record matched: nothing was read, none was passed over for the checkpoint, and
    /// the replay was not cut short.
    public var matchedNothing: Bool { read == 0 && alreadyReplayed == 0 && !interrupted }

    /// Whether everything read reached an outcome, nothing was (or would be) dead-lettered, the
    /// source did not fail, and, when ``requiresRecords`` is set, some record matched.
    public var isSuccess: Bool {
        deadLettered == 0 && abandoned == 0 && !interrupted && failure == nil && !(requiresRecords && matchedNothing)
    }

    /// The closing summary for a person: totals, dead letters by code, then one line per partition,
    /// and the result.
    ///
    /// A dry run's summary says what *would* happen (`would be handled`, `would be dead-lettered`)
    /// and ends with its own result line: `result: OK (dry run, nothing written)`, or
    /// `result: WOULD DEAD-LETTER n (dry run, nothing written)`, or `INCOMPLETE`/`EMPTY` in the
    /// same form.
    public var rendered: String {
        var lines: [String] = []
        let handledWord = dryRun ? "would be handled" : "handled"
        let deadLetteredWord = dryRun ? "would be dead-lettered" : "dead-lettered"
        let state = (interrupted ? "INTERRUPTED" : "finished") + (dryRun ? " (dry run, nothing written)" : "")
        lines.append("replay \(state): \(read) records read, \(handled) \(handledWord), \(duplicates) skipped as duplicates, \(skipped) skipped by policy, \(deadLettered) \(deadLetteredWord)\(abandoned > 0 ? ", \(abandoned) without outcome" : "")")
        for (code, count) in deadLetteredByCode.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lines.append("  \(deadLetteredWord) \(code): \(count)")
        }
        for (code, count) in skippedByCode.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            lines.append("  skipped \(code): \(count)")
        }
        for (topic, keys) in parkedKeysSkipped.sorted(by: { $0.key < $1.key }) {
            for (key, count) in keys.sorted(by: { $0.key < $1.key }) {
                lines.append("  parked key skipped: \(topic) \(key): \(count) records (not replayed: the key waits for `parked release`; --ignore-parking replays it)")
            }
        }
        for (partition, summary) in partitions.sorted(by: { $0.key < $1.key }) {
            let range = summary.first.map { "offsets \($0.rawValue)…\(summary.last!.rawValue)" } ?? "no records"
            lines.append("  \(partition): \(range): \(summary.read) read, \(summary.handled) \(handledWord), \(summary.duplicates) duplicates, \(summary.skipped) skipped, \(summary.deadLettered) \(deadLetteredWord)")
        }
        if alreadyReplayed > 0 { lines.append("  \(alreadyReplayed) records passed over: the checkpoint covers them") }
        if matchedNothing { lines.append("  no record matched the range") }
        if let failure { lines.append("  stopped by an error: \(failure)") }
        lines.append("result: " + (dryRun ? dryRunResult : liveResult))
        return lines.joined(separator: "\n")
    }

    private var emptyResult: String { "EMPTY (no record matched; --allow-empty accepts that)" }

    private var liveResult: String {
        if requiresRecords && matchedNothing { return emptyResult }
        return isSuccess ? "OK" : "FAILED (\(deadLettered) dead-lettered, \(abandoned) without outcome\(interrupted ? ", interrupted" : ""))"
    }

    private var dryRunResult: String {
        var parts: [String] = []
        if deadLettered > 0 { parts.append("WOULD DEAD-LETTER \(deadLettered)") }
        if abandoned > 0 || interrupted || failure != nil {
            parts.append("INCOMPLETE (\(abandoned) without outcome\(interrupted ? ", interrupted" : ""))")
        }
        if requiresRecords && matchedNothing { parts.append(emptyResult) }
        return (parts.isEmpty ? "OK" : parts.joined(separator: ", ")) + " (dry run, nothing written)"
    }
}

/// Where a replay stands, reported while it runs.
public struct ReplayProgress: Sendable, Hashable {
    /// Per partition: records with an outcome so far, and the next offset to reach (when known).
    public struct PartitionProgress: Sendable, Hashable {
        /// Records with an outcome so far.
        public var done: Int
        /// The next offset after the last record with an outcome.
        public var position: Offset?
        /// The offset after the partition's last record to replay, when known.
        public var end: Offset?
    }

    /// Per partition.
    public var partitions: [TopicPartition: PartitionProgress]
    /// Whether this is the report at the end.
    public var isFinal: Bool
}
