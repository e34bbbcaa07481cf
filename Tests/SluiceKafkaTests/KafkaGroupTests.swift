import Foundation
import Logging
import Sluice
import SluiceKafka
import Synchronization
import Testing

/// A consumer-group member as the layer above the adapter will run one: it handles only partitions
/// it owns, commits after each batch, and on revocation waits for its in-flight commit, then commits
/// what it handled before letting the partitions go.
///
/// It also checks the adapter's promise on every assignment: the first record it gets for a newly
/// assigned partition is exactly the group's committed offset for it.
final class GroupMember: KafkaRebalanceListener {
    struct State {
        var owned: Set<TopicPartition> = []
        var processed: [TopicPartition: Offset] = [:]
        var inFlightCommits = 0
        var revoking = 0
        /// The committed offset each newly assigned partition must resume at.
        var expectedStart: [TopicPartition: Offset] = [:]
        var startMismatches: [(TopicPartition, expected: Offset, actual: Offset)] = []
        var revocationCommitFailures: [KafkaError] = []
        /// Commits refused because the group was rebalancing: the next commit carries the same offsets.
        var rebalanceCommitFailures = 0
    }

    let name: String
    let ledger: Ledger
    let state = Mutex(State())
    /// Weak: the consumer holds its listener strongly, so a strong reference back would keep both
    /// (and the librdkafka handle) alive forever.
    private struct WeakConsumer { weak var consumer: KafkaConsumer? }
    private let consumerBox = Mutex(WeakConsumer())

    init(name: String, ledger: Ledger) {
        self.name = name
        self.ledger = ledger
    }

    func attach(_ consumer: KafkaConsumer) { consumerBox.withLock { $0.consumer = consumer } }
    var consumer: KafkaConsumer? { consumerBox.withLock { $0.consumer } }
    var owned: Set<TopicPartition> { state.withLock { $0.owned } }

    func partitionsAssigned(_ partitions: [TopicPartition]) async -> [TopicPartition: Offset] {
        var committed: [TopicPartition: Offset] = [:]
        do {
            committed = try await consumer?.committedOffsets(for: partitions) ?? [:]
        } catch {
            Issue.record("\(name): reading committed offsets failed: \(error)")
        }
        state.withLock { state in
            state.owned.formUnion(partitions)
            for partition in partitions {
                let offset = committed[partition] ?? .invalid
                state.expectedStart[partition] = offset.isConcrete ? offset : Offset(0)
            }
        }
        return [:]
    }

    func partitionsRevoked(_ partitions: [TopicPartition], lost: Bool) async {
        state.withLock { $0.revoking += 1 }
        while state.withLock({ $0.inFlightCommits > 0 }) { try? await Task.sleep(for: .milliseconds(5)) }
        let offsets = state.withLock { state in
            state.owned.subtract(partitions)
            let offsets = state.processed.filter { partitions.contains($0.key) }
            // Forget them: committing these again after the partition came back would move the
            // group's commit backwards, past what the other owner committed.
            for partition in partitions { state.processed.removeValue(forKey: partition) }
            return offsets
        }
        if !lost, let consumer {
            do {
                try await consumer.commit(offsets)
            } catch {
                state.withLock { $0.revocationCommitFailures.append(error) }
            }
        }
        state.withLock { $0.revoking -= 1 }
    }

    /// Handles batches until the consumer is closed.
    func run() async throws {
        guard let consumer else { return }
        for try await batch in consumer.batches {
            let offsets: [TopicPartition: Offset]? = state.withLock { state in
                for record in batch where state.owned.contains(record.topicPartition) {
                    let partition = record.topicPartition
                    if let expected = state.expectedStart.removeValue(forKey: partition), expected != record.offset {
                        state.startMismatches.append((partition, expected, record.offset))
                    }
                    ledger.handled(record, by: name)
                    state.processed[partition] = record.offset.next
                }
                guard state.revoking == 0 else { return nil }
                state.inFlightCommits += 1
                return state.processed.filter { state.owned.contains($0.key) }
            }
            guard let offsets else { continue }
            do {
                try await consumer.commit(offsets)
            } catch where error.code == "REBALANCE_IN_PROGRESS" || error.code == "ILLEGAL_GENERATION" {
                state.withLock { $0.rebalanceCommitFailures += 1 }
            } catch {
                Issue.record("\(name): commit failed: \(error)")
            }
            state.withLock { $0.inFlightCommits -= 1 }
        }
    }
}

/// Who handled which record, how often.
final class Ledger: Sendable {
    private let entries = Mutex<[TopicPartition: [Offset: [String]]]>([:])

    func handled(_ record: Record, by member: String) {
        entries.withLock { $0[record.topicPartition, default: [:]][record.offset, default: []].append(member) }
    }

    var count: Int { count(distinct: false) }
    func count(distinct: Bool) -> Int {
        entries.withLock { $0.values.reduce(0) { $0 + (distinct ? $1.count : $1.values.reduce(0) { $0 + $1.count }) } }
    }
    func count(by member: String) -> Int {
        entries.withLock { $0.values.reduce(0) { $0 + $1.values.filter { $0.contains(member) }.count } }
    }
    var duplicates: [(TopicPartition, Offset, [String])] {
        entries.withLock { entries in
            entries.flatMap { partition, offsets in
                offsets.filter { $0.value.count > 1 }.map { (partition, $0.key, $0.value) }
            }
        }
    }
    func offsets(of partition: TopicPartition) -> [Int64] {
        entries.withLock { ($0[partition] ?? [:]).keys.map(\.rawValue).sorted() }
    }
}

@Suite("Consumer groups, rebalances and broker faults", .serialized)
struct KafkaGroupTests {
    typealias Support = KafkaTestSupport

    /// Cooperative-sticky runs where librdkafka has the fix for its assignor-state abort (2.3.0,
    /// librdkafka issue 4312), or when asked for with SLUICE_TEST_COOPERATIVE=1; eager always.
    static var strategies: [KafkaConsumerConfiguration.AssignmentStrategy] {
        let parts = KafkaLibrary.version.split(separator: ".").compactMap { Int($0) }
        let fixed = parts.count >= 2 && (parts[0], parts[1]) >= (2, 3)
        let asked = ProcessInfo.processInfo.environment["SLUICE_TEST_COOPERATIVE"] == "1"
        return fixed || asked ? [.range, .roundRobin, .cooperativeSticky] : [.range, .roundRobin]
    }

    @Test(
        "Two consumers split the partitions; when one closes the other takes all and resumes from the commits, with no gap and no repeat",
        arguments: KafkaGroupTests.strategies)
    func takeover(strategy: KafkaConsumerConfiguration.AssignmentStrategy) async throws {
        let topic = "takeover-\(strategy.rawValue)"
        let cluster = try Support.cluster(topics: [topic: 6])
        let producer = try Support.producer(cluster)
        let ledger = Ledger()
        var configuration = Support.consumerConfiguration(cluster, group: "takeover")
        configuration.assignmentStrategy = strategy

        // Produce steadily while the group forms and changes, so both members see traffic.
        let total = 6_000
        let producing = Task {
            for chunk in 0..<60 {
                try await Support.produceAll(producer, (0..<100).map { index in
                    let sequence = chunk * 100 + index
                    return ProducerRecord(topic: topic, partition: Int32(sequence % 6), value: Support.bytes("g\(sequence)"))
                })
                try await Task.sleep(for: .milliseconds(100))
            }
        }

        let a = GroupMember(name: "a", ledger: ledger)
        let b = GroupMember(name: "b", ledger: ledger)
        let consumerA = try KafkaConsumer(configuration: configuration, rebalanceListener: a, logger: Support.logger)
        a.attach(consumerA)
        try await consumerA.subscribe([topic])
        let runA = Task { try await a.run() }
        try await Support.eventually("member a to own partitions") { !a.owned.isEmpty }

        let consumerB = try KafkaConsumer(configuration: configuration, rebalanceListener: b, logger: Support.logger)
        b.attach(consumerB)
        try await consumerB.subscribe([topic])
        let runB = Task { try await b.run() }
        try await Support.eventually("both members to own partitions and handle records") {
            !a.owned.isEmpty && !b.owned.isEmpty && ledger.count(by: "b") > 0
        }
        #expect(a.owned.isDisjoint(with: b.owned), "no partition is owned by two members at once")
        #expect(a.owned.count + b.owned.count == 6)

        let handedOver = b.owned
        let duplicatesBeforeClose = Set(ledger.duplicates.map { "\($0.0)@\($0.1)" })
        try await consumerB.close()
        try await runB.value
        #expect(b.state.withLock { $0.revocationCommitFailures }.isEmpty, "the closing member commits before it lets go")
        try await Support.eventually("member a to own all six partitions") { a.owned.count == 6 }
        try await producing.value
        try await Support.eventually("every record to be handled", timeout: .seconds(60)) { ledger.count(distinct: true) >= total }

        // Every assignment resumed exactly at the group's committed offset: nothing skipped, and nothing
        // below a commit handled again. (Records handled after the last successful commit may repeat when
        // a revocation's commit is refused mid-rebalance: at-least-once, above the commit only.)
        for member in [a, b] {
            let mismatches = member.state.withLock { $0.startMismatches }
            #expect(mismatches.isEmpty, "\(member.name) resumed away from the committed offset: \(mismatches)")
        }
        // The closing member's commit landed, so its partitions moved without a single repeat.
        let handoverDuplicates = ledger.duplicates.filter {
            handedOver.contains($0.0) && !duplicatesBeforeClose.contains("\($0.0)@\($0.1)") && $0.2.last == "a" && $0.2.contains("b")
        }
        #expect(handoverDuplicates.isEmpty, "handled again after a clean handover: \(handoverDuplicates.prefix(5))")
        for partition in 0..<6 {
            #expect(ledger.offsets(of: TopicPartition(topic: topic, partition: Int32(partition))) == Array(0..<1_000))
        }
        try await consumerA.close()
        try await runA.value
        try await producer.close()
    }

    @Test("A broker taken down and brought back during consumption: consumption continues and nothing is lost")
    func brokerDownAndUp() async throws {
        let cluster = try Support.cluster(brokers: 3, topics: ["outage": 6])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<2_000).map {
            ProducerRecord(topic: "outage", partition: Int32($0 % 6), value: Support.bytes("o\($0)"))
        })
        let ledger = Ledger()
        let member = GroupMember(name: "m", ledger: ledger)
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "outage"), rebalanceListener: member, logger: Support.logger)
        member.attach(consumer)
        try await consumer.subscribe(["outage"])
        let running = Task { try await member.run() }
        try await Support.eventually("some records handled") { ledger.count >= 500 }

        try cluster.takeBrokerDown(2)
        // Records for partitions led by the missing broker wait in the producer and are retried.
        let producing = Task {
            try await Support.produceAll(producer, (2_000..<4_000).map {
                ProducerRecord(topic: "outage", partition: Int32($0 % 6), value: Support.bytes("o\($0)"))
            })
        }
        try await Task.sleep(for: .seconds(3))
        try cluster.bringBrokerUp(2)
        _ = try await producing.value
        try await Support.eventually("all 4,000 records handled", timeout: .seconds(90)) { ledger.count >= 4_000 }
        #expect(ledger.duplicates.isEmpty)
        for partition in 0..<6 {
            let offsets = ledger.offsets(of: TopicPartition(topic: "outage", partition: Int32(partition)))
            #expect(offsets == Array(0..<Int64(offsets.count)), "partition \(partition) has no gap")
        }
        #expect(ledger.count == 4_000)
        try await consumer.close()
        try await running.value
        try await producer.close()
    }

    @Test("A partition leader moved mid-stream: producer and consumer follow it without loss")
    func leaderMoves() async throws {
        let cluster = try Support.cluster(brokers: 3, topics: ["moving": 2])
        let producer = try Support.producer(cluster)
        let ledger = Ledger()
        let member = GroupMember(name: "m", ledger: ledger)
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: "moving"), rebalanceListener: member, logger: Support.logger)
        member.attach(consumer)
        try await consumer.subscribe(["moving"])
        let running = Task { try await member.run() }
        for round in 0..<4 {
            _ = try await Support.produceAll(producer, (0..<500).map {
                ProducerRecord(topic: "moving", partition: Int32($0 % 2), value: Support.bytes("m\(round)-\($0)"))
            })
            try cluster.moveLeader(of: TopicPartition(topic: "moving", partition: 0), to: Int32(round % 3 + 1))
            try cluster.moveLeader(of: TopicPartition(topic: "moving", partition: 1), to: Int32((round + 1) % 3 + 1))
        }
        try await Support.eventually("all 2,000 records handled", timeout: .seconds(60)) { ledger.count >= 2_000 }
        #expect(ledger.duplicates.isEmpty)
        for partition in 0..<2 {
            #expect(ledger.offsets(of: TopicPartition(topic: "moving", partition: Int32(partition))) == Array(0..<1_000))
        }
        try await consumer.close()
        try await running.value
        try await producer.close()
    }

    @Test("A batch sent with send(_:) lands in the order given in each partition, through retried produce errors; a closed producer fails every record")
    func orderedBatchSend() async throws {
        let cluster = try Support.cluster(topics: ["ordered": 3])
        let producer = try Support.producer(cluster)
        let records = (0..<3_000).map { index in
            ProducerRecord(topic: "ordered", partition: Int32(index % 3), key: Support.bytes("k\(index % 7)"), value: Support.bytes(String(index)))
        }
        // Retriable failures in the middle of the batch: librdkafka resends, and order must survive it.
        cluster.injectErrors([.notLeaderOrFollower, .requestTimedOut, .notEnoughReplicas], into: .produce)
        let results = await producer.send(records)
        cluster.clearInjectedErrors(for: .produce)
        let reports = try results.map { try $0.get() }
        #expect(reports.count == records.count)
        for (record, report) in zip(records, reports) {
            #expect(report.topicPartition.partition == record.partition)
        }

        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await consumer.assign(Dictionary(uniqueKeysWithValues: (0..<3).map { (TopicPartition(topic: "ordered", partition: Int32($0)), Offset.beginning) }))
        let received = try await Support.collect(from: consumer) { $0.count >= records.count }
        try await consumer.close()
        for partition in Int32(0)..<3 {
            let values = received.filter { $0.partition == partition }.map { Int(String(decoding: $0.value ?? [], as: UTF8.self))! }
            #expect(values == Array(stride(from: Int(partition), to: records.count, by: 3)), "partition \(partition) in send order")
        }

        try await producer.close()
        let afterClose = await producer.send(Array(records.prefix(3)))
        #expect(afterClose.count == 3)
        for result in afterClose {
            guard case .failure(let error) = result else {
                Issue.record("a closed producer delivered a record")
                continue
            }
            #expect(error.code == KafkaError.Code.clientClosed)
        }
    }

    @Test("Records whose partition leader returns errors: retriable errors are retried to success, others are reported in the delivery result")
    func produceErrors() async throws {
        // One topic per case: librdkafka remembers a topic's authorization failure until its next metadata refresh.
        let cluster = try Support.cluster(topics: ["retried": 1, "refused": 1, "timed-out": 1])
        let producer = try Support.producer(cluster) { $0.deliveryTimeout = .seconds(3) }

        cluster.injectErrors([.notLeaderOrFollower, .requestTimedOut, .notEnoughReplicas], into: .produce)
        let retried = try await producer.send(ProducerRecord(topic: "retried", partition: 0, value: Support.bytes("retried")))
        #expect(retried.offset == 0)

        cluster.injectErrors([.topicAuthorizationFailed], into: .produce)
        let refused = await #expect(throws: KafkaError.self) {
            try await producer.send(ProducerRecord(topic: "refused", partition: 0, value: Support.bytes("refused")))
        }
        #expect(refused?.code == "TOPIC_AUTHORIZATION_FAILED")
        #expect(refused?.isRetriable == false)

        // A leader that keeps failing until the delivery timeout: the record fails loudly.
        cluster.injectErrors(Array(repeating: .notEnoughReplicas, count: 1_000), into: .produce)
        let timedOut = await #expect(throws: KafkaError.self) {
            try await producer.send(ProducerRecord(topic: "timed-out", partition: 0, value: Support.bytes("timed-out")))
        }
        #expect(timedOut?.code == "_MSG_TIMED_OUT")
        #expect(timedOut?.isRetriable == true)
        cluster.clearInjectedErrors(for: .produce)

        let after = try await producer.send(ProducerRecord(topic: "retried", partition: 0, value: Support.bytes("after")))
        // Exactly the records reported delivered are in the logs: once each, in order.
        let consumer = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await consumer.assign([
            TopicPartition(topic: "retried", partition: 0): .beginning,
            TopicPartition(topic: "refused", partition: 0): .beginning,
            TopicPartition(topic: "timed-out", partition: 0): .beginning,
        ])
        let records = try await Support.collect(from: consumer) { $0.count >= 2 }
        try await Task.sleep(for: .milliseconds(500))
        #expect(records.map { String(decoding: $0.value ?? [], as: UTF8.self) } == ["retried", "after"])
        #expect(records.last?.offset == after.offset)
        for topic in ["refused", "timed-out"] {
            #expect(try await consumer.watermarks(for: TopicPartition(topic: topic, partition: 0)).high == 0, "\(topic) holds nothing")
        }
        try await consumer.close()
        try await producer.close()
    }
}
