import Synchronization

/// The commit position of each partition: the offset after the last record with a durable outcome.
///
/// Lanes advance it as records get their outcomes (strictly in order, so it is always contiguous);
/// the committer takes what changed since the last commit. Thread-safe.
public final class OffsetWatermarks: Sendable {
    private struct State {
        var next: [TopicPartition: Offset] = [:]
        var committed: [TopicPartition: Offset] = [:]
    }

    private let state = Mutex(State())

    /// Watermarks with no partition tracked.
    public init() {}

    /// Records that every record of `partition` before `next` has a durable outcome.
    ///
    /// - Important: Watermarks only move forward; an older position is ignored.
    public func advance(_ partition: TopicPartition, to next: Offset) {
        state.withLock { state in
            if let current = state.next[partition], current >= next { return }
            state.next[partition] = next
        }
    }

    /// The position to commit for every partition whose watermark moved since its last commit.
    public func uncommitted() -> [TopicPartition: Offset] {
        state.withLock { state in
            state.next.filter { state.committed[$0.key] != $0.value }
        }
    }

    /// The current watermark of `partition`, if any record of it has an outcome.
    public func position(of partition: TopicPartition) -> Offset? {
        state.withLock { $0.next[partition] }
    }

    /// The last position of `partition` committed from here, if any.
    public func committed(_ partition: TopicPartition) -> Offset? {
        state.withLock { $0.committed[partition] }
    }

    /// Notes that `offsets` were committed.
    public func markCommitted(_ offsets: [TopicPartition: Offset]) {
        state.withLock { state in
            for (partition, offset) in offsets where (state.committed[partition] ?? .invalid) < offset {
                state.committed[partition] = offset
            }
        }
    }

    /// Forgets partitions this consumer no longer owns, so a later owner's progress is never
    /// overwritten by a stale commit from here.
    public func forget(_ partitions: some Sequence<TopicPartition>) {
        state.withLock { state in
            for partition in partitions {
                state.next.removeValue(forKey: partition)
                state.committed.removeValue(forKey: partition)
            }
        }
    }
}
