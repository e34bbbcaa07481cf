import Foundation
import Synchronization

/// Why a partition is halted, and since when.
public struct PartitionHalt: Sendable, Hashable {
    /// Why the partition cannot move, in an operator's words: `cannot write to the dead-letter
    /// topic`, `store unavailable`, or the fix for a refused dead letter.
    public var reason: String
    /// When the halt began.
    public var since: Date

    /// A halt of `reason` that began at `since`.
    public init(reason: String, since: Date) {
        self.reason = reason
        self.since = since
    }
}

/// The partitions halted right now: each waits for its dead-letter topic or its store and makes
/// no progress until that answers.
///
/// The pipeline records a halt when it begins and when it ends (never per record), beside the
/// `sluice.partition.halted` gauge; readiness and `/partitions` read it on request. Thread-safe.
public final class PartitionHalts: Sendable {
    private let halts = Mutex<[TopicPartition: PartitionHalt]>([:])

    /// No partition halted.
    public init() {}

    /// Notes that `partition` halted for `reason`. A halt already in force keeps its start.
    public func begin(_ partition: TopicPartition, reason: String, at time: Date = Date()) {
        halts.withLock { halts in
            if halts[partition] == nil { halts[partition] = PartitionHalt(reason: reason, since: time) }
        }
    }

    /// Notes that `partition` moves again.
    public func end(_ partition: TopicPartition) {
        _ = halts.withLock { $0.removeValue(forKey: partition) }
    }

    /// The halts in force, by partition.
    public var current: [TopicPartition: PartitionHalt] { halts.withLock { $0 } }
}
