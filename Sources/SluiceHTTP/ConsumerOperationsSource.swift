import Foundation
import Sluice
import SluiceKafka

/// Answers the operations endpoint for a running `EventConsumer`.
///
/// Readiness: the consumer holds its group assignment (an empty one counts), its store answers
/// a read within ``storeTimeout``, and no partition is halted. Everything is read when asked.
public struct ConsumerOperationsSource<Store: DedupeStore>: OperationsStatusSource {
    private let consumer: EventConsumer<Store>
    /// How long the store may take to answer the readiness check. Default: 2 s.
    public var storeTimeout: Duration

    /// Answers for `consumer`.
    public init(consumer: EventConsumer<Store>, storeTimeout: Duration = .seconds(2)) {
        self.consumer = consumer
        self.storeTimeout = storeTimeout
    }

    public func isLive() async -> Bool {
        await consumer.status(storeTimeout: nil).phase != .stopped
    }

    public func readinessProblems() async -> [String] {
        await consumer.status(storeTimeout: storeTimeout).readinessProblems
    }

    public func partitions() async -> ConsumerPartitionsDocument {
        ConsumerPartitionsDocument(await consumer.status(storeTimeout: nil, parkedKeysTimeout: storeTimeout))
    }
}

/// `GET /partitions` of a consumer: `{"group":…, "phase":…, "partitions":[…]}`, one object per
/// assigned partition with `topic`, `partition`, `committed_offset`, `position`,
/// `high_watermark`, `lag`, `queued_records`, `in_flight_offset`, `paused`, `halted`, `halt`
/// (`{"reason":…, "since":<RFC 3339>}`) and `parked_keys` (keys parked on the partition with
/// `--on-poison park`; `null` when parking is off for its topic or the store did not answer); a
/// value not known yet is `null`.
public struct ConsumerPartitionsDocument: Encodable, Sendable {
    /// The status it renders.
    public var status: ConsumerStatus

    /// The document of `status`.
    public init(_ status: ConsumerStatus) {
        self.status = status
    }

    private enum Keys: String, CodingKey {
        case group, phase, partitions
        case topic, partition, committedOffset = "committed_offset", position, highWatermark = "high_watermark", lag
        case queuedRecords = "queued_records", inFlightOffset = "in_flight_offset", paused, halted, halt
        case parkedKeys = "parked_keys"
        case reason, since
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Keys.self)
        try container.encode(status.group, forKey: .group)
        try container.encode(status.phase.rawValue, forKey: .phase)
        var list = container.nestedUnkeyedContainer(forKey: .partitions)
        for partition in status.partitions {
            var item = list.nestedContainer(keyedBy: Keys.self)
            try item.encode(partition.partition.topic, forKey: .topic)
            try item.encode(partition.partition.partition, forKey: .partition)
            try item.encode(partition.committedOffset?.rawValue, forKey: .committedOffset)
            try item.encode(partition.position?.rawValue, forKey: .position)
            try item.encode(partition.highWatermark?.rawValue, forKey: .highWatermark)
            try item.encode(partition.lag, forKey: .lag)
            try item.encode(partition.queuedRecords, forKey: .queuedRecords)
            try item.encode(partition.inFlightOffset?.rawValue, forKey: .inFlightOffset)
            try item.encode(partition.isPaused, forKey: .paused)
            try item.encode(partition.halt != nil, forKey: .halted)
            if let halt = partition.halt {
                var nested = item.nestedContainer(keyedBy: Keys.self, forKey: .halt)
                try nested.encode(halt.reason, forKey: .reason)
                try nested.encode(halt.since.formatted(.iso8601), forKey: .since)
            } else {
                try item.encodeNil(forKey: .halt)
            }
            try item.encode(partition.parkedKeys, forKey: .parkedKeys)
        }
    }
}
