import Foundation

/// Where a replay starts reading a partition.
public enum ReplayStart: Sendable, Hashable {
    /// The partition's first retained record.
    case beginning
    /// This offset (the first record replayed).
    case offset(Offset)
    /// The first record whose timestamp is at or after this time.
    case timestamp(Date)
}

/// Where a replay stops reading a partition.
public enum ReplayEnd: Sendable, Hashable {
    /// The high watermark when the replay starts: records produced meanwhile are not replayed.
    case highWatermark
    /// This offset, inclusive: the last record replayed.
    case offset(Offset)
    /// The last record whose timestamp is at or before this time, inclusive.
    case timestamp(Date)
}

/// What a replay reads: its source, and per partition where it starts and ends.
///
/// Built from the replay command's flags (`--from-offset`, `--to-offset`, `--from-timestamp`,
/// `--to-timestamp`); partitions without an offset of their own use the timestamps, then the
/// defaults (the beginning, the high watermark at start).
public struct ReplayPlan: Sendable, Hashable {
    /// What the records come from.
    public enum Source: Sendable, Hashable {
        /// These topics' partitions.
        case topics([String])
        /// A dead-letter topic: its records are replayed as if read from their original topics.
        case deadLetterTopic(String)
        /// A snapshot file (JSON Lines, as `sluice export` writes).
        case snapshot(path: String)
    }

    /// `PARTITION:OFFSET`, as `--from-offset` and `--to-offset` take it.
    public struct PartitionOffset: Sendable, Hashable, CustomStringConvertible {
        /// The partition number.
        public var partition: Int32
        /// The offset.
        public var offset: Offset

        /// Offset `offset` of partition `partition`.
        public init(partition: Int32, offset: Offset) {
            self.partition = partition
            self.offset = offset
        }

        /// Reads `3:120`.
        ///
        /// - Throws: `SluiceError` with `SluiceError/Code/replayPlanInvalid`.
        public init(parsing text: String) throws(SluiceError) {
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let partition = Int32(parts[0]), partition >= 0, let offset = Int64(parts[1]), offset >= 0 else {
                throw SluiceError(code: .replayPlanInvalid, message: "'\(text)' is not PARTITION:OFFSET (two non-negative integers, e.g. 3:120)")
            }
            self.init(partition: partition, offset: Offset(offset))
        }

        public var description: String { "\(partition):\(offset.rawValue)" }
    }

    /// Where the records come from.
    public var source: Source
    /// Where partitions start unless ``startOffsets`` names them. Default: ``ReplayStart/beginning``.
    public var start: ReplayStart = .beginning
    /// Where partitions end unless ``endOffsets`` names them. Default: ``ReplayEnd/highWatermark``.
    public var end: ReplayEnd = .highWatermark
    /// Per-partition first offsets (`--from-offset`), for every topic of the source.
    public var startOffsets: [Int32: Offset] = [:]
    /// Per-partition last offsets, inclusive (`--to-offset`).
    public var endOffsets: [Int32: Offset] = [:]
    /// When set, only these partitions are replayed; otherwise every partition of the source,
    /// or, when only offsets were given, the partitions they name.
    public var partitions: Set<Int32>?

    /// A plan reading all of `source`: every partition from its beginning to its end.
    public init(source: Source) {
        self.source = source
    }

    /// A plan from the replay command's flags.
    ///
    /// - Throws: `SluiceError` with `SluiceError/Code/replayPlanInvalid` for malformed values,
    ///   a range that ends before it starts, or offsets mixed with a snapshot source.
    public init(
        source: Source, fromOffsets: [String] = [], toOffsets: [String] = [], fromTimestamp: String? = nil, toTimestamp: String? = nil
    ) throws(SluiceError) {
        self.init(source: source)
        for text in fromOffsets {
            let value = try PartitionOffset(parsing: text)
            guard startOffsets.updateValue(value.offset, forKey: value.partition) == nil else {
                throw SluiceError(code: .replayPlanInvalid, message: "--from-offset names partition \(value.partition) twice")
            }
        }
        for text in toOffsets {
            let value = try PartitionOffset(parsing: text)
            guard endOffsets.updateValue(value.offset, forKey: value.partition) == nil else {
                throw SluiceError(code: .replayPlanInvalid, message: "--to-offset names partition \(value.partition) twice")
            }
        }
        if let fromTimestamp { start = .timestamp(try Self.date(fromTimestamp, flag: "--from-timestamp")) }
        if let toTimestamp { end = .timestamp(try Self.date(toTimestamp, flag: "--to-timestamp")) }
        if case .timestamp(let from) = start, case .timestamp(let to) = end, to < from {
            throw SluiceError(code: .replayPlanInvalid, message: "--to-timestamp is before --from-timestamp")
        }
        for (partition, first) in startOffsets {
            if let last = endOffsets[partition], last < first {
                throw SluiceError(code: .replayPlanInvalid, message: "partition \(partition): --to-offset \(last) is before --from-offset \(first)")
            }
        }
        if case .snapshot = source, !startOffsets.isEmpty || !endOffsets.isEmpty {
            // A snapshot is replayed whole or by time; its offsets belong to another cluster.
            throw SluiceError(code: .replayPlanInvalid, message: "--from-offset/--to-offset do not apply to --snapshot; use timestamps")
        }
        if fromTimestamp == nil && toTimestamp == nil && (!startOffsets.isEmpty || !endOffsets.isEmpty) {
            partitions = Set(startOffsets.keys).union(endOffsets.keys)
        }
    }

    /// Where `partition` starts.
    public func start(of partition: Int32) -> ReplayStart {
        startOffsets[partition].map(ReplayStart.offset) ?? start
    }

    /// Where `partition` ends.
    public func end(of partition: Int32) -> ReplayEnd {
        endOffsets[partition].map(ReplayEnd.offset) ?? end
    }

    /// Whether `record` lies inside the plan (used where the source cannot seek: snapshots).
    public func contains(_ record: Record) -> Bool {
        if let partitions, !partitions.contains(record.partition) { return false }
        switch start(of: record.partition) {
        case .beginning: break
        case .offset(let first): if record.offset < first { return false }
        case .timestamp(let date): if let time = record.timestamp, time.date < date { return false }
        }
        switch end(of: record.partition) {
        case .highWatermark: break
        case .offset(let last): if record.offset > last { return false }
        case .timestamp(let date): if let time = record.timestamp, time.date > date { return false }
        }
        return true
    }

    static func date(_ text: String, flag: String) throws(SluiceError) -> Date {
        guard let timestamp = RFC3339Timestamp(text) else {
            throw SluiceError(code: .replayPlanInvalid, message: "\(flag) '\(text)' is not an RFC 3339 timestamp (e.g. 2026-11-22T10:00:00Z)")
        }
        return Date(timeIntervalSince1970: Double(timestamp.secondsSinceEpoch) + Double(timestamp.nanoseconds) / 1e9)
    }
}

extension RecordTimestamp {
    /// The timestamp as a `Date`.
    public var date: Date { Date(timeIntervalSince1970: Double(milliseconds) / 1_000) }
}

extension SluiceError.Code {
    /// A replay's range or source is malformed or contradictory.
    public static let replayPlanInvalid: Self = "REPLAY_PLAN_INVALID"
    /// The broker's answer to a by-timestamp offset lookup is contradicted by the records read:
    /// the range resolved from it is not the one asked for.
    public static let replayTimestampLookupContradicted: Self = "REPLAY_TIMESTAMP_LOOKUP_CONTRADICTED"
}
