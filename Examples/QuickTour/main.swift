// The quick tour: what the Kafka layer of Sluice does today, against the embedded cluster.
//
// Two group members share a topic, a broker goes down mid-stream and comes back, one member
// leaves and the other takes over from the committed offsets. At the end every record has been
// handled, none is missing, and redeliveries are counted and explained.

import Foundation
import Logging
import Sluice
import SluiceKafka
import Synchronization

@main
struct QuickTour {
    static func main() async throws {
        var logger = Logger(label: "quick-tour") { StreamLogHandler.standardError(label: $0) }
        logger.logLevel = .critical

        say("1. Starting an embedded Kafka cluster: 3 brokers on loopback (librdkafka \(KafkaLibrary.version))")
        let cluster = try EmbeddedKafkaCluster(brokers: 3, logger: logger)
        try cluster.createTopic("payments", partitions: 6)
        say("   bootstrap.servers=\(cluster.bootstrapServers), topic payments with 6 partitions")

        let producer = try KafkaProducer(configuration: .init(bootstrapServers: [cluster.bootstrapServers]), logger: logger)
        let firstReports = try await produce(producer, range: 0..<3_000)
        say("2. Produced 3,000 payment events with an idempotent producer; every one acknowledged:")
        let perPartition = Dictionary(grouping: firstReports, by: \.topicPartition.partition).mapValues(\.count)
        say("   " + perPartition.keys.sorted().map { "p\($0): \(perPartition[$0]!)" }.joined(separator: ", "))

        let tally = Tally()
        var configuration = KafkaConsumerConfiguration(bootstrapServers: [cluster.bootstrapServers], groupID: "quick-tour")
        configuration.sessionTimeout = .seconds(3)
        configuration.properties["heartbeat.interval.ms"] = "300"
        let first = try Worker(name: "worker-1", configuration: configuration, tally: tally, logger: logger)
        say("3. worker-1 joins group quick-tour and starts handling, committing after every batch")
        try await waitUntil { !first.owned.isEmpty && tally.handled >= 500 }
        let second = try Worker(name: "worker-2", configuration: configuration, tally: tally, logger: logger)
        say("   worker-2 joins; the group rebalances…")
        try await waitUntil { !second.owned.isEmpty }
        say("   worker-1 owns \(first.ownedDescription), worker-2 owns \(second.ownedDescription)")

        say("4. Broker 2 goes down while 1,000 more events are produced…")
        try cluster.takeBrokerDown(2)
        let producing = Task { try await produce(producer, range: 3_000..<4_000) }
        try await Task.sleep(for: .seconds(2))
        try cluster.bringBrokerUp(2)
        _ = try await producing.value
        say("   …and comes back. The producer retried what it could not deliver; nothing was lost.")

        say("5. worker-2 leaves: it finishes its batch, commits, and hands its partitions over")
        try await second.stop()
        try await waitUntil { first.owned.count == 6 && tally.distinct >= 4_000 }
        say("   worker-1 now owns \(first.ownedDescription) and resumed each at the committed offset")

        try await first.stop()
        try await producer.close()

        say("6. Summary")
        say("   produced 4,000 · handled \(tally.handled) (worker-1 \(tally.handled(by: "worker-1")), worker-2 \(tally.handled(by: "worker-2")))")
        say("   missing: \(4_000 - tally.distinct) · handled again after a rebalance: \(tally.handled - tally.distinct)")
        say("   commits the broker refused while the group was rebalancing: \(tally.refusedCommits)")
        if tally.handled > tally.distinct {
            say("   (Kafka delivers at least once: records handled after the last commit that landed are delivered")
            say("    again to the next owner. Sluice's dedupe store is what turns that into exactly-once effects.)")
        }
        guard tally.distinct == 4_000 else {
            say("The tour did not end as it should; see above.")
            exit(1)
        }
        say("Every event was handled, in order per partition, through a rebalance, a broker outage and a handover.")
    }

    static func produce(_ producer: KafkaProducer, range: Range<Int>) async throws -> [DeliveryReport] {
        let reports = Mutex<[DeliveryReport]>([])
        let failures = Mutex<[KafkaError]>([])
        for index in range {
            let customer = "cust_\(index % 40)"
            let value = #"{"event_id":"evt_\#(index)","event_type":"billing.payment_authorized","subject":"invoice:inv_\#(index)","amount_minor":\#(1_000 + index)}"#
            try await producer.enqueue(ProducerRecord(
                topic: "payments", key: Array(customer.utf8), value: Array(value.utf8),
                headers: [RecordHeader(name: "source", string: "quick-tour")])
            ) { result in
                switch result {
                case .success(let report): reports.withLock { $0.append(report) }
                case .failure(let error): failures.withLock { $0.append(error) }
                }
            }
        }
        try await producer.flush(timeout: .seconds(60))
        if let failure = failures.withLock({ $0.first }) { throw failure }
        return reports.withLock { $0 }
    }

    static func waitUntil(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else { throw CancellationError() }
            try await Task.sleep(for: .milliseconds(50))
        }
    }

    static func say(_ line: String) { print(line) }
}

/// Who handled what.
final class Tally: Sendable {
    private let seen = Mutex<(handled: Int, byWorker: [String: Int], distinct: Set<String>)>((0, [:], []))
    private let refused = Mutex(0)
    func commitRefused() { refused.withLock { $0 += 1 } }
    var refusedCommits: Int { refused.withLock { $0 } }
    func record(_ record: Record, by worker: String) {
        seen.withLock {
            $0.handled += 1
            $0.byWorker[worker, default: 0] += 1
            $0.distinct.insert("\(record.partition)@\(record.offset)")
        }
    }
    var handled: Int { seen.withLock { $0.handled } }
    var distinct: Int { seen.withLock { $0.distinct.count } }
    func handled(by worker: String) -> Int { seen.withLock { $0.byWorker[worker] ?? 0 } }
}

/// A group member that handles only partitions it owns and commits before it lets any go.
final class Worker: KafkaRebalanceListener {
    let name: String
    let tally: Tally
    private let state = Mutex<(owned: Set<TopicPartition>, processed: [TopicPartition: Offset], busy: Bool)>(([], [:], false))
    /// Weak: the consumer holds its listener (this worker) strongly.
    private struct WeakConsumer { weak var consumer: KafkaConsumer? }
    private let consumerBox = Mutex(WeakConsumer())
    private let loop = Mutex<Task<Void, any Error>?>(nil)

    /// Alive while the worker's loop runs (the loop holds it).
    var consumer: KafkaConsumer {
        get throws {
            guard let consumer = consumerBox.withLock({ $0.consumer }) else { throw CancellationError() }
            return consumer
        }
    }
    var owned: Set<TopicPartition> { state.withLock { $0.owned } }
    var ownedDescription: String { owned.map(\.partition).sorted().map { "p\($0)" }.joined(separator: " ") }

    init(name: String, configuration: KafkaConsumerConfiguration, tally: Tally, logger: Logger) throws {
        self.name = name
        self.tally = tally
        let consumer = try KafkaConsumer(configuration: configuration, rebalanceListener: self, logger: logger)
        consumerBox.withLock { $0.consumer = consumer }
        loop.withLock { $0 = Task { try await self.run(consumer) } }
    }

    func partitionsAssigned(_ partitions: [TopicPartition]) async -> [TopicPartition: Offset] {
        state.withLock { $0.owned.formUnion(partitions) }
        return [:]
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) async {
        while state.withLock({ $0.busy }) { try? await Task.sleep(for: .milliseconds(5)) }
        let offsets = state.withLock { state in
            state.owned.subtract(partitions)
            // Forget what was handled here: committing it again after the partition came back
            // would move the group's commit backwards, past what the other owner committed.
            defer { for partition in partitions { state.processed.removeValue(forKey: partition) } }
            return state.processed.filter { partitions.contains($0.key) }
        }
        // The mock broker refuses commits while a rebalance is in progress; the group then
        // redelivers from the last commit that landed (at-least-once, never a gap).
        if !lost {
            do {
                try await self.consumer.commit(offsets)
            } catch {
                tally.commitRefused()
            }
        }
    }

    private func run(_ consumer: KafkaConsumer) async throws {
        try await consumer.subscribe(["payments"])
        for try await batch in consumer.batches {
            let offsets = state.withLock { state in
                state.busy = true
                for record in batch where state.owned.contains(record.topicPartition) {
                    tally.record(record, by: name)
                    state.processed[record.topicPartition] = record.offset.next
                }
                return state.processed.filter { state.owned.contains($0.key) }
            }
            do {
                try await consumer.commit(offsets)
            } catch {
                tally.commitRefused()
            }
            state.withLock { $0.busy = false }
        }
    }

    func stop() async throws {
        try await self.consumer.close()
        try await loop.withLock { $0 }?.value
    }
}
