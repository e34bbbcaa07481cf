import Foundation
import Sluice
import Synchronization

/// Answers the operations endpoint for a replay (`replay --http-address`), which joins no
/// group: ready while its store answers and no partition is halted; `/partitions` shows each
/// partition's progress as the replay last reported it.
public final class ReplayOperationsSource<Store: DedupeStore>: OperationsStatusSource {
    private struct State {
        var progress: ReplayProgress?
        var finished = false
    }

    private let state = Mutex(State())
    private let store: Store
    private let group: String
    private let halts: PartitionHalts
    private let storeTimeout: Duration

    /// Answers for a replay through `pipeline`, whose store is `store`, for `group`.
    public init(pipeline: EventPipeline<Store>, store: Store, group: String, storeTimeout: Duration = .seconds(2)) {
        self.store = store
        self.group = group
        self.halts = pipeline.halts
        self.storeTimeout = storeTimeout
    }

    /// Notes the replay's latest progress (pass it the runner's progress callback).
    public func update(_ progress: ReplayProgress) {
        state.withLock { $0.progress = progress }
    }

    /// Notes that the replay has ended: liveness turns 503.
    public func finish() {
        state.withLock { $0.finished = true }
    }

    public func isLive() async -> Bool {
        !state.withLock(\.finished)
    }

    public func readinessProblems() async -> [String] {
        var problems: [String] = []
        for (partition, halt) in halts.current.sorted(by: { $0.key < $1.key }) {
            problems.append("halted: \(partition) since \(halt.since.formatted(.iso8601)): \(halt.reason)")
        }
        let probe = state.withLock { $0.progress?.partitions.keys.sorted() } ?? []
        if let problem = await store.availabilityProblem(group: group, probe: Array(probe.prefix(1)), timeout: storeTimeout) {
            problems.append("store: unavailable: \(problem)")
        }
        return problems
    }

    public func partitions() async -> ReplayPartitionsDocument {
        ReplayPartitionsDocument(progress: state.withLock(\.progress), halts: halts.current)
    }
}

/// `GET /partitions` of a replay: `{"partitions":[…]}`, one object per partition with `topic`,
/// `partition`, `done` (records with an outcome), `position`, `end`, `remaining`, `halted` and
/// `halt`; a value not known is `null`.
public struct ReplayPartitionsDocument: Encodable, Sendable {
    var progress: ReplayProgress?
    var halts: [TopicPartition: PartitionHalt]

    private enum Keys: String, CodingKey {
        case partitions, topic, partition, done, position, end, remaining, halted, halt, reason, since
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        var list = container.nestedUnkeyedContainer(forKey: .partitions)
        for (partition, value) in (progress?.partitions ?? [:]).sorted(by: { $0.key < $1.key }) {
            var item = list.nestedContainer(keyedBy: Keys.self)
            try item.encode(partition.topic, forKey: .topic)
            try item.encode(partition.partition, forKey: .partition)
            try item.encode(value.done, forKey: .done)
            try item.encode(value.position?.rawValue, forKey: .position)
            try item.encode(value.end?.rawValue, forKey: .end)
            let remaining = value.end.flatMap { end in value.position.map { max(0, end.rawValue - $0.rawValue) } }
            try item.encode(remaining, forKey: .remaining)
            let halt = halts[partition]
            try item.encode(halt != nil, forKey: .halted)
            if let halt {
                var nested = item.nestedContainer(keyedBy: Keys.self, forKey: .halt)
                try nested.encode(halt.reason, forKey: .reason)
                try nested.encode(halt.since.formatted(.iso8601), forKey: .since)
            } else {
                try item.encodeNil(forKey: .halt)
            }
        }
    }
}
