import Metrics
import Synchronization

/// The pipeline's swift-metrics instruments, created once per label and dimensions.
///
/// Names: `sluice.records.consumed`, `sluice.records.handled`, `sluice.records.duplicates`,
/// `sluice.records.dead_lettered` (dimension `code`), `sluice.records.dead_letter_truncated`
/// (records dead-lettered as stubs, too large for their dead-letter topic), `sluice.records.skipped` (`code`),
/// `sluice.handler.retries` (`handler`), `sluice.handler.duration` (timer, `handler`),
/// `sluice.partition.halted` (gauge, 1 while a partition waits for its dead-letter topic, for an
/// outage or a refusal, or for its store), `sluice.store.unavailable` (transactions that failed
/// with the store down), `sluice.records.parked` (records whose key is parked: the head record
/// and every record appended to its sequence, `topic` and `partition`), `sluice.parked.keys`
/// (gauge, `topic`: the keys parked for the group, counted in the store at start, every 30 s and at
/// each park and release). All
/// carry the `topic` dimension where a record is involved.
final class PipelineMetrics: Sendable {
    private let factory: any MetricsFactory
    /// Where halts are recorded beside their gauge, for readiness and `/partitions` to read.
    let halts: PartitionHalts

    init(factory: any MetricsFactory, halts: PartitionHalts = PartitionHalts()) {
        self.factory = factory
        self.halts = halts
    }

    private struct Key: Hashable {
        var label: String
        var dimensions: [String]
    }

    private let counters = Mutex<[Key: Counter]>([:])
    private let timers = Mutex<[Key: Timer]>([:])
    private let gauges = Mutex<[Key: Gauge]>([:])

    private func counter(_ label: String, _ dimensions: [(String, String)]) -> Counter {
        let key = Key(label: label, dimensions: dimensions.flatMap { [$0.0, $0.1] })
        return counters.withLock { counters in
            if let counter = counters[key] { return counter }
            let counter = Counter(label: label, dimensions: dimensions, factory: factory)
            counters[key] = counter
            return counter
        }
    }

    /// The counters every record touches, made once per topic: looking one up by label and
    /// dimensions for every record (building the key's array, hashing three strings) showed in
    /// the pipeline's profile.
    private struct TopicCounters {
        var consumed: Counter
        var handled: Counter
        var duplicates: Counter
    }

    private let perTopic = Mutex<[String: TopicCounters]>([:])

    private func counters(_ topic: String) -> TopicCounters {
        if let counters = perTopic.withLock({ $0[topic] }) { return counters }
        let made = TopicCounters(
            consumed: counter("sluice.records.consumed", [("topic", topic)]),
            handled: counter("sluice.records.handled", [("topic", topic)]),
            duplicates: counter("sluice.records.duplicates", [("topic", topic)]))
        return perTopic.withLock { perTopic in
            if let counters = perTopic[topic] { return counters }
            perTopic[topic] = made
            return made
        }
    }

    func consumed(_ record: Record) { counters(record.topic).consumed.increment() }
    func handled(_ record: Record) { counters(record.topic).handled.increment() }
    func duplicate(_ record: Record) { counters(record.topic).duplicates.increment() }

    func deadLettered(_ record: Record, code: SluiceError.Code) {
        counter("sluice.records.dead_lettered", [("topic", record.topic), ("code", code.rawValue)]).increment()
    }

    /// `sluice.store.unavailable`: a transaction that failed because the store was down.
    func storeUnavailable(_ record: Record) {
        counter("sluice.store.unavailable", [("topic", record.topic)]).increment()
    }

    func deadLetterTruncated(_ record: Record) {
        counter("sluice.records.dead_letter_truncated", [("topic", record.topic)]).increment()
    }

    func skipped(_ record: Record, code: SluiceError.Code) {
        counter("sluice.records.skipped", [("topic", record.topic), ("code", code.rawValue)]).increment()
    }

    /// `sluice.records.parked`: a record parked (the head of a key's sequence, or appended to it).
    func parked(_ record: Record) {
        counter("sluice.records.parked", [("topic", record.topic), ("partition", String(record.partition))]).increment()
    }

    /// `sluice.parked.keys`: how many keys of `topic` are parked, as just counted in the store.
    func parkedKeys(topic: String, count: Int) {
        let dimensions = [("topic", topic)]
        let key = Key(label: "sluice.parked.keys", dimensions: ["topic", topic])
        let gauge = gauges.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: key.label, dimensions: dimensions, factory: factory)
            gauges[key] = gauge
            return gauge
        }
        gauge.record(count)
    }

    func retried(_ record: Record, handler: String) {
        counter("sluice.handler.retries", [("topic", record.topic), ("handler", handler)]).increment()
    }

    func handlerDuration(_ handler: String, _ duration: Duration) {
        let key = Key(label: "sluice.handler.duration", dimensions: ["handler", handler])
        let timer = timers.withLock { timers in
            if let timer = timers[key] { return timer }
            let timer = Timer(label: key.label, dimensions: [("handler", handler)], factory: factory)
            timers[key] = timer
            return timer
        }
        timer.record(duration: duration)
    }

    /// Sets `sluice.partition.halted` and the partition's ``PartitionHalts`` entry: halted for
    /// `reason`, or moving again when `reason` is `nil`.
    func halted(_ partition: TopicPartition, reason: String?) {
        if let reason { halts.begin(partition, reason: reason) } else { halts.end(partition) }
        let isHalted = reason != nil
        let dimensions = [("topic", partition.topic), ("partition", String(partition.partition))]
        let key = Key(label: "sluice.partition.halted", dimensions: dimensions.flatMap { [$0.0, $0.1] })
        let gauge = gauges.withLock { gauges in
            if let gauge = gauges[key] { return gauge }
            let gauge = Gauge(label: key.label, dimensions: dimensions, factory: factory)
            gauges[key] = gauge
            return gauge
        }
        gauge.record(isHalted ? 1 : 0)
    }
}
