import Foundation
import Sluice

/// What an ``EventConsumer`` is doing right now: its place in the group, each assigned
/// partition's progress, and whether its store answers. Read on request (``EventConsumer/status(storeTimeout:parkedKeysTimeout:)``),
/// for readiness checks and status pages.
public struct ConsumerStatus: Sendable {
    /// Where the consumer is in its life.
    public enum Phase: String, Sendable, Hashable {
        /// Not yet subscribed, or subscribed and waiting for the group to give it its
        /// assignment (at start, after losing its assignment, or during an eager rebalance).
        case joining
        /// A member of its group that holds its assignment (which may be empty: a group with
        /// more members than partitions).
        case member
        /// Draining after SIGTERM (or after a failure): finishing in-flight records, committing,
        /// leaving the group.
        case stopping
        /// ``EventConsumer/run()`` has returned.
        case stopped
    }

    /// One assigned partition.
    public struct Partition: Sendable, Hashable {
        /// The partition.
        public var partition: TopicPartition
        /// The position this member last committed to the group, if any.
        public var committedOffset: Offset?
        /// The offset after the last record with a durable outcome (what the next commit
        /// commits), if any record of this assignment has one.
        public var position: Offset?
        /// The partition's high watermark as the last fetch reported it.
        public var highWatermark: Offset?
        /// Records between ``position`` (or the commit, before any outcome) and the high watermark.
        public var lag: Int64?
        /// Records fetched and waiting in the partition's lane.
        public var queuedRecords: Int
        /// The offset of the record being processed now, if any.
        public var inFlightOffset: Offset?
        /// Whether the lane is full and the partition paused at the source.
        public var isPaused: Bool
        /// Why the partition is halted, if it is.
        public var halt: PartitionHalt?
        /// How many keys parked on this partition wait for `parked release` (`--on-poison park`);
        /// `nil` when parking is off for its topic, or the count was not asked for or not read.
        public var parkedKeys: Int?

        /// A partition's status from its parts.
        public init(
            partition: TopicPartition, committedOffset: Offset?, position: Offset?, highWatermark: Offset?, lag: Int64?,
            queuedRecords: Int, inFlightOffset: Offset?, isPaused: Bool, halt: PartitionHalt?, parkedKeys: Int? = nil
        ) {
            self.partition = partition
            self.committedOffset = committedOffset
            self.position = position
            self.highWatermark = highWatermark
            self.lag = lag
            self.queuedRecords = queuedRecords
            self.inFlightOffset = inFlightOffset
            self.isPaused = isPaused
            self.halt = halt
            self.parkedKeys = parkedKeys
        }
    }

    /// The consumer group.
    public var group: String
    /// Where the consumer is in its life.
    public var phase: Phase
    /// Each assigned partition, in order.
    public var partitions: [Partition]
    /// Why the store did not answer a read within the check's timeout, if it did not.
    public var storeProblem: String?

    /// A status from its parts.
    public init(group: String, phase: Phase, partitions: [Partition], storeProblem: String?) {
        self.group = group
        self.phase = phase
        self.partitions = partitions
        self.storeProblem = storeProblem
    }

    /// Why the consumer is not ready to be counted on, one line each; empty when it is ready:
    /// it holds its assignment, its store answers and no partition is halted.
    public var readinessProblems: [String] {
        var problems: [String] = []
        switch phase {
        case .joining: problems.append("not assigned: joining group \(group)")
        case .stopping: problems.append("shutting down")
        case .stopped: problems.append("stopped")
        case .member: break
        }
        for partition in partitions {
            guard let halt = partition.halt else { continue }
            problems.append("halted: \(partition.partition) since \(halt.since.formatted(.iso8601)): \(halt.reason)")
        }
        if let storeProblem { problems.append("store: unavailable: \(storeProblem)") }
        return problems
    }
}
