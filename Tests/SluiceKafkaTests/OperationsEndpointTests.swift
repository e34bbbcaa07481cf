import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import Logging
import ServiceLifecycle
import Sluice
import SluiceCLI
import SluiceHTTP
import SluiceKafka
import Synchronization
import Testing

/// Real HTTP requests to the operations endpoint (`--http-address`) of consumers running on the
/// embedded cluster: readiness following halts and store outages, Prometheus metrics equal to
/// what the test produced, partitions after a rebalance.
@Suite("The operations endpoint of running consumers", .serialized)
struct OperationsEndpointTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    /// One answer over HTTP.
    struct Answer {
        var status: Int
        var body: String

        func json() throws -> [String: Any] {
            try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any], "\(body)")
        }

        var reasons: [String] { ((try? json())?["reasons"] as? [String]) ?? [] }
    }

    static func get(_ address: HTTPAddress, _ path: String) async throws -> Answer {
        let session = URLSession(configuration: .ephemeral)
        defer { session.finishTasksAndInvalidate() }
        let url = try #require(URL(string: "http://\(address)\(path)"))
        let (data, response) = try await session.data(from: url)
        let status = try #require(response as? HTTPURLResponse).statusCode
        return Answer(status: status, body: String(decoding: data, as: UTF8.self))
    }

    /// A consumer and its endpoint, both running; the endpoint on a port the system chose.
    final class Served<Store: DedupeStore>: Sendable {
        let running: Pipeline.Running<Store>
        let endpoint: Task<Void, any Error>
        let group: ServiceGroup
        let address: HTTPAddress
        let metrics: PrometheusMetrics

        init(_ consumer: EventConsumer<Store>, metrics: PrometheusMetrics, storeTimeout: Duration = .seconds(2)) async throws {
            self.metrics = metrics
            let bound = AsyncStream.makeStream(of: HTTPAddress.self)
            let endpoint = OperationsEndpoint(
                address: HTTPAddress(host: "127.0.0.1", port: 0),
                source: ConsumerOperationsSource(consumer: consumer, storeTimeout: storeTimeout), metrics: metrics,
                logger: Support.logger
            ) { address in bound.continuation.yield(address) }
            let group = ServiceGroup(configuration: .init(services: [endpoint], logger: Support.logger))
            self.group = group
            self.endpoint = Task { try await group.run() }
            var addresses = bound.stream.makeAsyncIterator()
            self.address = try #require(await addresses.next())
            self.running = Pipeline.Running(consumer)
        }

        func stop() async throws {
            try await running.stop()
            await group.triggerGracefulShutdown()
            try await endpoint.value
        }
    }

    /// A value the test's polling closures (which are `@Sendable`) set and the test reads.
    final class Shared<Value: Sendable>: Sendable {
        private let value: Mutex<Value>
        init(_ value: Value) { self.value = Mutex(value) }
        var current: Value {
            get { value.withLock { $0 } }
            set { value.withLock { $0 = newValue } }
        }
        func increment() where Value == Int { value.withLock { $0 += 1 } }
    }

    static func router(_ handled: Shared<Int>) -> EventRouter<InMemoryDedupeStore.Transaction> {
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { _, _ in handled.increment() }
        return router
    }

    /// The value of the sample `name{labels}` on a Prometheus text page (labels in any order).
    static func sample(_ page: String, _ name: String, _ labels: [String: String]) -> Double? {
        for line in page.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " ") else { continue }
            let series = line[..<space]
            let value = Double(line[line.index(after: space)...])
            let seriesName = series.firstIndex(of: "{").map { String(series[..<$0]) } ?? String(series)
            guard seriesName == name else { continue }
            var found: [String: String] = [:]
            if let open = series.firstIndex(of: "{"), let close = series.lastIndex(of: "}") {
                for pair in series[series.index(after: open)..<close].split(separator: ",") {
                    let parts = pair.split(separator: "=", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    found[String(parts[0])] = String(parts[1]).trimmingCharacters(in: CharacterSet(charactersIn: "\""))
                }
            }
            if found == labels { return value }
        }
        return nil
    }

    @Test("A partition halted on its dead-letter topic turns readiness to 503 with the reason (and /partitions says halted); once the topic takes writes, 200; /metrics counts exactly what was produced")
    func readinessFollowsHalt() async throws {
        let cluster = try Support.cluster(topics: ["ops": 2, "ops.DLT": 1])
        let producer = try Support.producer(cluster)
        // Partition 0: 5 good records, poison at offset 5, 4 more; partition 1: 6 good records.
        try await Support.produceAll(producer, (0..<10).map { index in
            ProducerRecord(topic: "ops", partition: 0, value: index == 5
                ? Support.bytes("not json") : Pipeline.envelope(id: "p0-\(index)", data: #"{"key":"k","seq":\#(index)}"#))
        } + (0..<6).map { ProducerRecord(topic: "ops", partition: 1, value: Pipeline.envelope(id: "p1-\($0)", data: #"{"key":"k","seq":\#($0)}"#)) })
        let deadLetterProducer = try Support.producer(cluster) { $0.deliveryTimeout = .milliseconds(500) }
        cluster.injectErrors(Array(repeating: .notEnoughReplicas, count: 1_000_000), into: .produce)
        let handled = Shared(0)
        let metrics = PrometheusMetrics()
        let served = try await Served(try Pipeline.consumer(
            cluster: cluster, group: "ops", topics: ["ops"], store: InMemoryDedupeStore(), router: Self.router(handled),
            deadLetterProducer: deadLetterProducer, metricsFactory: metrics.factory
        ) { $0.pipeline.deadLetters.maxRetryDelay = .milliseconds(300) }, metrics: metrics)

        #expect(try await Self.get(served.address, "/health/live").status == 200)
        let latest = Shared(Answer(status: 0, body: ""))
        try await Support.eventually("readiness 503 for the halted partition", timeout: .seconds(60)) {
            let answer = try await Self.get(served.address, "/health/ready")
            latest.current = answer
            return answer.status == 503 && answer.reasons.contains { $0.hasPrefix("halted: ops[0] since ") }
        }
        let halted = latest.current
        #expect(try halted.json()["status"] as? String == "not ready")
        let reason = try #require(halted.reasons.first { $0.hasPrefix("halted:") })
        #expect(reason.hasSuffix(": cannot write to the dead-letter topic"), "\(halted.reasons)")
        #expect(halted.reasons.count == 1, "only the halt: \(halted.reasons)")
        let partitions = try await Self.get(served.address, "/partitions")
        #expect(partitions.status == 200)
        let list = try #require(try partitions.json()["partitions"] as? [[String: Any]])
        let zero = try #require(list.first { $0["partition"] as? Int == 0 })
        #expect(zero["halted"] as? Bool == true)
        #expect(zero["in_flight_offset"] as? Int == 5, "the poison record is in flight: \(zero)")
        #expect(zero["position"] as? Int == 5)
        #expect(((zero["halt"] as? [String: Any])?["reason"] as? String) == "cannot write to the dead-letter topic")
        let page = try await Self.get(served.address, "/metrics").body
        #expect(Self.sample(page, "sluice_partition_halted", ["topic": "ops", "partition": "0"]) == 1, "\(page)")

        cluster.clearInjectedErrors(for: .produce)
        try await Support.eventually("readiness 200 once the dead letter is written", timeout: .seconds(60)) {
            try await Self.get(served.address, "/health/ready").status == 200
        }
        try await Support.eventually("every record handled", timeout: .seconds(30)) { handled.current == 15 }
        let ready = try await Self.get(served.address, "/health/ready")
        #expect(try ready.json()["status"] as? String == "ready" && ready.reasons.isEmpty)
        try await Support.eventually("the lag gauges at 0", timeout: .seconds(10)) {
            let page = try await Self.get(served.address, "/metrics").body
            return Self.sample(page, "sluice_partition_lag", ["topic": "ops", "partition": "0"]) == 0
                && Self.sample(page, "sluice_partition_lag", ["topic": "ops", "partition": "1"]) == 0
        }
        let final = try await Self.get(served.address, "/metrics")
        #expect(final.status == 200)
        #expect(final.body.contains("# TYPE sluice_records_handled_total counter"))
        #expect(Self.sample(final.body, "sluice_records_handled_total", ["topic": "ops"]) == 15)
        #expect(Self.sample(final.body, "sluice_records_consumed_total", ["topic": "ops"]) == 16)
        #expect(Self.sample(final.body, "sluice_records_dead_lettered_total", ["topic": "ops", "code": "ENVELOPE_NOT_JSON"]) == 1)
        #expect(Self.sample(final.body, "sluice_partition_halted", ["topic": "ops", "partition": "0"]) == 0)
        #expect(Self.sample(final.body, "sluice_handler_duration_seconds_count", ["handler": "count"]) == 15)
        #expect(!final.body.contains("sluice."), "every name is a Prometheus name")
        try await served.stop()
        try await deadLetterProducer.close()
        try await producer.close()
    }

    /// A store that can be taken down: while down, transactions and reads fail with
    /// STORE_UNAVAILABLE, as a database that went away does.
    final class SwitchableStore: DedupeStore {
        let base = InMemoryDedupeStore()
        let down = Mutex(false)

        func check() throws {
            if down.withLock({ $0 }) { throw SluiceError(code: .storeUnavailable, message: "the test took the store down", isRetriable: true) }
        }

        func withTransaction<T: Sendable>(_ body: (InMemoryDedupeStore.Transaction) async throws -> T) async throws -> T {
            try check()
            return try await base.withTransaction(body)
        }

        func storedOffsets(group: String, partitions: [TopicPartition]) async throws -> [TopicPartition: Offset] {
            try check()
            return try await base.storedOffsets(group: group, partitions: partitions)
        }

        func pruneProcessedEvents(olderThan cutoff: Date) async throws -> Int {
            try check()
            return try await base.pruneProcessedEvents(olderThan: cutoff)
        }
    }

    @Test("The store down: readiness 503 with 'store: unavailable' (and the partition that meets it halted); back up: 200 and the records handled")
    func readinessFollowsStore() async throws {
        let cluster = try Support.cluster(topics: ["st": 1, "st.DLT": 1])
        let producer = try Support.producer(cluster)
        let deadLetterProducer = try Support.producer(cluster)
        let store = SwitchableStore()
        let handled = Shared(0)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { _, _ in handled.increment() }
        let metrics = PrometheusMetrics()
        let served = try await Served(try Pipeline.consumer(
            cluster: cluster, group: "st", topics: ["st"], store: store, router: router, deadLetterProducer: deadLetterProducer,
            metricsFactory: metrics.factory
        ) { $0.pipeline.retry.maxDelay = .milliseconds(200) }, metrics: metrics, storeTimeout: .seconds(1))
        try await Support.eventually("ready once assigned", timeout: .seconds(60)) {
            try await Self.get(served.address, "/health/ready").status == 200
        }
        store.down.withLock { $0 = true }
        var answer = try await Self.get(served.address, "/health/ready")
        #expect(answer.status == 503)
        #expect(answer.reasons == ["store: unavailable: the test took the store down"], "\(answer.reasons)")
        try await Support.produceAll(producer, (0..<3).map { ProducerRecord(topic: "st", partition: 0, value: Pipeline.envelope(id: "s\($0)", data: #"{"key":"k","seq":\#($0)}"#)) })
        let latest = Shared(answer)
        try await Support.eventually("the partition halted on its store", timeout: .seconds(30)) {
            let answer = try await Self.get(served.address, "/health/ready")
            latest.current = answer
            return answer.reasons.contains { $0.hasPrefix("halted: st[0] since ") && $0.hasSuffix(": store unavailable") }
        }
        answer = latest.current
        #expect(answer.status == 503 && answer.reasons.contains("store: unavailable: the test took the store down"), "\(answer.reasons)")
        #expect(handled.current == 0)
        store.down.withLock { $0 = false }
        try await Support.eventually("readiness 200 once the store answers", timeout: .seconds(30)) {
            try await Self.get(served.address, "/health/ready").status == 200
        }
        try await Support.eventually("the records handled", timeout: .seconds(30)) { handled.current == 3 }
        let page = try await Self.get(served.address, "/metrics").body
        #expect((Self.sample(page, "sluice_store_unavailable_total", ["topic": "st"]) ?? 0) >= 1)
        try await served.stop()
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("--on-poison park: /partitions counts each partition's parked keys, /metrics has sluice_records_parked_total per partition and the sluice_parked_keys gauge")
    func parkedKeysOnThePages() async throws {
        let cluster = try Support.cluster(topics: ["parkops": 2, "parkops.DLT": 1])
        let producer = try Support.producer(cluster)
        // Partition 0: key a's second event is refused for good, so a's events 1…4 wait (1 dead
        // letter, 4 records parked); key b flows. Partition 1: key c flows.
        var records: [ProducerRecord] = []
        for seq in 0..<5 {
            for (key, partition) in [("a", Int32(0)), ("b", 0), ("c", 1)] {
                records.append(ProducerRecord(
                    topic: "parkops", partition: partition, key: Support.bytes(key),
                    value: Pipeline.envelope(id: "\(key)-\(seq)", data: #"{"key":"\#(key)","seq":\#(seq)}"#)))
            }
        }
        try await Support.produceAll(producer, records)
        let handled = Shared(0)
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Pipeline.Item.self, handler: "count") { event, _ in
            if event.payload.key == "a" && event.payload.seq == 1 { throw SluiceError(code: "REFUSED", message: "a#1 is refused") }
            handled.increment()
        }
        let deadLetterProducer = try Support.producer(cluster)
        let metrics = PrometheusMetrics()
        let store = InMemoryDedupeStore()
        let served = try await Served(try Pipeline.consumer(
            cluster: cluster, group: "parkops", topics: ["parkops"], store: store, router: router,
            deadLetterProducer: deadLetterProducer, metricsFactory: metrics.factory
        ) { configuration in
            configuration.pipeline.parking = Parking(mode: .park)
            configuration.parkedKeysInterval = .milliseconds(200)
        }, metrics: metrics)

        try await Support.eventually("every other record handled", timeout: .seconds(60)) { handled.current == 11 }
        try await Support.eventually("the parked records counted", timeout: .seconds(30)) {
            Self.sample(try await Self.get(served.address, "/metrics").body, "sluice_records_parked_total", ["topic": "parkops", "partition": "0"]) == 4
        }
        let page = try await Self.get(served.address, "/metrics").body
        #expect(Self.sample(page, "sluice_parked_keys", ["topic": "parkops"]) == 1, "\(page)")
        #expect(Self.sample(page, "sluice_records_dead_lettered_total", ["topic": "parkops", "code": "REFUSED"]) == 1)
        #expect(Self.sample(page, "sluice_records_parked_total", ["topic": "parkops", "partition": "1"]) == nil)
        let list = try #require(try await Self.get(served.address, "/partitions").json()["partitions"] as? [[String: Any]])
        #expect(list.first { $0["partition"] as? Int == 0 }?["parked_keys"] as? Int == 1, "\(list)")
        #expect(list.first { $0["partition"] as? Int == 1 }?["parked_keys"] as? Int == 0, "\(list)")
        #expect(try await Self.get(served.address, "/health/ready").status == 200, "a parked key does not halt anything")

        // Another process discards the key (as `parked discard` would): the gauge follows.
        let dropped = try await store.withTransaction {
            try await $0.discardParked(group: "parkops", topic: "parkops", key: ParkingKey("a"), by: "test", at: Date())
        }
        #expect(dropped == 4)
        try await Support.eventually("sluice_parked_keys back to 0", timeout: .seconds(10)) {
            Self.sample(try await Self.get(served.address, "/metrics").body, "sluice_parked_keys", ["topic": "parkops"]) == 0
        }
        let after = try #require(try await Self.get(served.address, "/partitions").json()["partitions"] as? [[String: Any]])
        #expect(after.first { $0["partition"] as? Int == 0 }?["parked_keys"] as? Int == 0)
        try await served.stop()
        try await deadLetterProducer.close()
        try await producer.close()
    }

    @Test("/partitions after a rebalance: a second member takes some of the four partitions; each page lists only its own, together all four, with their commits and lag")
    func partitionsAfterRebalance() async throws {
        let cluster = try Support.cluster(topics: ["rb": 4, "rb.DLT": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<40).map {
            ProducerRecord(topic: "rb", partition: Int32($0 % 4), value: Pipeline.envelope(id: "r\($0)", data: #"{"key":"k","seq":\#($0)}"#))
        })
        let deadLetterProducer = try Support.producer(cluster)
        let handled = Shared(0)
        func member() async throws -> Served<InMemoryDedupeStore> {
            let metrics = PrometheusMetrics()
            return try await Served(try Pipeline.consumer(
                cluster: cluster, group: "rb", topics: ["rb"], store: InMemoryDedupeStore(), router: Self.router(handled),
                deadLetterProducer: deadLetterProducer, metricsFactory: metrics.factory), metrics: metrics)
        }
        @Sendable func partitions(_ served: Served<InMemoryDedupeStore>) async throws -> [[String: Any]] {
            let answer = try await Self.get(served.address, "/partitions")
            return try #require(try answer.json()["partitions"] as? [[String: Any]])
        }
        let first = try await member()
        try await Support.eventually("the first member holding all four and committed to the end", timeout: .seconds(60)) {
            let list = try await partitions(first)
            return list.count == 4 && list.allSatisfy { $0["committed_offset"] as? Int == 10 && $0["lag"] as? Int == 0 }
        }
        let second = try await member()
        try await Support.eventually("the partitions split between both members", timeout: .seconds(90)) {
            let one = try await partitions(first)
            let two = try await partitions(second)
            let all = (one + two).compactMap { $0["partition"] as? Int }
            return !one.isEmpty && !two.isEmpty && all.sorted() == [0, 1, 2, 3]
        }
        let one = try await partitions(first)
        let two = try await partitions(second)
        for entry in one + two {
            #expect(entry["topic"] as? String == "rb")
            #expect(entry["halted"] as? Bool == false)
            #expect(entry["queued_records"] as? Int == 0)
        }
        let page = try await Self.get(first.address, "/partitions").json()
        #expect(page["group"] as? String == "rb" && page["phase"] as? String == "member")
        // The first member's lag series of partitions it gave up end with them.
        let metricsPage = try await Self.get(first.address, "/metrics").body
        for entry in two {
            let partition = try #require(entry["partition"] as? Int)
            #expect(Self.sample(metricsPage, "sluice_partition_lag", ["topic": "rb", "partition": "\(partition)"]) == nil)
        }
        try await second.stop()
        try await first.stop()
        try await deadLetterProducer.close()
        try await producer.close()
    }
}

/// The pieces of the endpoint and the logs that need no broker.
@Suite("Operations endpoint pieces: addresses, Prometheus names, readiness reasons, JSON logs")
struct OperationsPiecesTests {
    @Test("--http-address parses HOST:PORT and [IPv6]:PORT; anything else is HTTP_ADDRESS_INVALID saying why")
    func addresses() throws {
        #expect(try HTTPAddress(parsing: "127.0.0.1:9090") == HTTPAddress(host: "127.0.0.1", port: 9090))
        #expect(try HTTPAddress(parsing: "[::1]:0") == HTTPAddress(host: "::1", port: 0))
        #expect(try HTTPAddress(parsing: "localhost:65535").description == "localhost:65535")
        #expect(HTTPAddress(host: "::1", port: 80).description == "[::1]:80")
        for bad in ["9090", "127.0.0.1:", ":9090", "127.0.0.1:http", "127.0.0.1:65536", "::1:9090", "[::1:9090", "127.0.0.1:-1"] {
            #expect(throws: SluiceError.self, "\(bad)") { try HTTPAddress(parsing: bad) }
            do {
                _ = try HTTPAddress(parsing: bad)
            } catch {
                #expect(error.code == .httpAddressInvalid && error.message.contains("'\(bad)'"))
            }
        }
    }

    @Test("Prometheus names: dots to underscores, counters end in _total, timers in _seconds")
    func names() {
        #expect(PrometheusMetrics.prometheusName("sluice.records.handled", kind: .counter) == "sluice_records_handled_total")
        #expect(PrometheusMetrics.prometheusName("sluice.partition.lag", kind: .gauge) == "sluice_partition_lag")
        #expect(PrometheusMetrics.prometheusName("sluice.handler.duration", kind: .timer) == "sluice_handler_duration_seconds")
        #expect(PrometheusMetrics.prometheusName("already_total", kind: .counter) == "already_total")
        #expect(PrometheusMetrics.prometheusName("9lives-ü", kind: .gauge) == "_9lives__")
    }

    @Test("Readiness reasons: joining, halted partitions with their start and reason, the store; none for a member with an empty assignment")
    func readinessReasons() {
        let since = Date(timeIntervalSince1970: 1_800_000_000)
        let halted = ConsumerStatus.Partition(
            partition: TopicPartition(topic: "orders.events", partition: 3), committedOffset: Offset(10), position: Offset(12),
            highWatermark: Offset(20), lag: 8, queuedRecords: 7, inFlightOffset: Offset(12), isPaused: false,
            halt: PartitionHalt(reason: "cannot write to the dead-letter topic", since: since))
        var status = ConsumerStatus(group: "g", phase: .member, partitions: [], storeProblem: nil)
        #expect(status.readinessProblems.isEmpty, "a member with no partitions is ready")
        status.phase = .joining
        #expect(status.readinessProblems == ["not assigned: joining group g"])
        status.phase = .member
        status.partitions = [halted]
        status.storeProblem = "no answer within 2.0 seconds"
        #expect(status.readinessProblems == [
            "halted: orders.events[3] since 2027-01-15T08:00:00Z: cannot write to the dead-letter topic",
            "store: unavailable: no answer within 2.0 seconds",
        ])
    }

    @Test("JSON log lines: one object per line with timestamp, level, label, message, source and the metadata as fields, escaped")
    func jsonLines() throws {
        let lines = Mutex<[String]>([])
        var logger = Logger(label: "sluice.run") { label in JSONLogHandler(label: label) { line in lines.withLock { $0.append(line) } } }
        logger[metadataKey: "kafka.group"] = "orders"
        logger.critical("cannot write to the dead-letter topic; partition halted", metadata: [
            "kafka.topic": "orders", "kafka.partition": "3", "error": "quote \" newline \n tab \t bell \u{07}",
            "message": "a metadata key named like a field", "list": ["a", "b"], "nested": ["k": "v"],
        ])
        logger.debug("below the level: not written")
        let written = lines.withLock { $0 }
        #expect(written.count == 1)
        let line = try #require(written.first)
        #expect(line.hasSuffix("}\n") && !line.dropLast().contains("\n"))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        #expect(object["level"] as? String == "critical")
        #expect(object["label"] as? String == "sluice.run")
        #expect(object["message"] as? String == "cannot write to the dead-letter topic; partition halted")
        #expect(object["source"] as? String == "SluiceKafkaTests")
        #expect(object["kafka.topic"] as? String == "orders" && object["kafka.partition"] as? String == "3")
        #expect(object["kafka.group"] as? String == "orders")
        #expect(object["error"] as? String == "quote \" newline \n tab \t bell \u{07}")
        #expect(object["metadata.message"] as? String == "a metadata key named like a field")
        #expect(object["list"] as? [String] == ["a", "b"])
        #expect((object["nested"] as? [String: String]) == ["k": "v"])
        let timestamp = try #require(object["timestamp"] as? String)
        #expect(try Date(timestamp, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)).timeIntervalSinceNow.magnitude < 60, "\(timestamp)")
    }
}

/// The real `run` command with `--http-address` and `--log-format json`, in its own process.
@Suite("run --http-address and --log-format json, in a process", .serialized)
struct RunCommandEndpointTests {
    typealias Support = KafkaTestSupport

    /// Starts `sluice-test-consumer run …` (or `replay …`) with its standard error in a file.
    static func start(
        _ fixture: ConsumerProcessTests.Fixture, _ cluster: EmbeddedKafkaCluster, command: String = "run", topic: String = "cmd",
        delayMicroseconds: Int = 0, extra: [String]
    ) throws -> (Process, URL) {
        let errors = fixture.directory.appendingPathComponent("stderr-\(UUID().uuidString).log")
        _ = FileManager.default.createFile(atPath: errors.path, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
            .appendingPathComponent("sluice-test-consumer")
        process.arguments = [
            command, "--bootstrap-servers", cluster.bootstrapServers, "--topic", topic, "--group", topic,
            "--database", "memory", "--schemas", fixture.directory.appendingPathComponent("EventSchemas").path,
        ] + (command == "run" ? ["--shutdown-timeout", "10", "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300"] : [])
            + extra
        var environment = ProcessInfo.processInfo.environment
        environment["SLUICE_TEST_LEDGER"] = fixture.ledger.path
        environment["SLUICE_TEST_HANDLER_DELAY_US"] = String(delayMicroseconds)
        process.environment = environment
        process.standardError = try FileHandle(forWritingTo: errors)
        try process.run()
        return (process, errors)
    }

    static func lines(_ file: URL) throws -> [String] {
        try String(contentsOf: file, encoding: .utf8).split(separator: "\n").map(String.init)
    }

    /// The address the process logged (JSON logs) when its endpoint started listening.
    static func loggedAddress(_ errors: URL) async throws -> HTTPAddress {
        let address = OperationsEndpointTests.Shared<HTTPAddress?>(nil)
        try await Support.eventually("the endpoint's address logged", timeout: .seconds(60)) {
            for line in try Self.lines(errors) {
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                      object["message"] as? String == "operations endpoint listening", let text = object["http.address"] as? String
                else { continue }
                address.current = try HTTPAddress(parsing: text)
            }
            return address.current != nil
        }
        return try #require(address.current)
    }

    @Test("replay --http-address: during a slow replay, ready is 200, /partitions shows each partition's progress toward its end, /metrics counts handled records; the replay still ends with its summary and status 0")
    func replayWithEndpoint() async throws {
        let cluster = try Support.cluster(topics: ["rp": 2, "rp.DLT": 1])
        let fixture = try ConsumerProcessTests.Fixture()
        try await ConsumerProcessTests.produceEvents(cluster, topic: "rp", count: 200)
        let (process, errors) = try Self.start(
            fixture, cluster, command: "replay", topic: "rp", delayMicroseconds: 40_000,
            extra: ["--http-address", "127.0.0.1:0", "--log-format", "json", "--log-level", "notice"])
        let endpoint = try await Self.loggedAddress(errors)
        #expect(try await OperationsEndpointTests.get(endpoint, "/health/live").status == 200)
        let ready = try await OperationsEndpointTests.get(endpoint, "/health/ready")
        #expect(ready.status == 200, "\(ready.body)")
        try await Support.eventually("/partitions with both partitions under way", timeout: .seconds(30)) {
            let page = try await OperationsEndpointTests.get(endpoint, "/partitions")
            let list = (try page.json()["partitions"] as? [[String: Any]]) ?? []
            return list.count == 2 && list.allSatisfy { $0["halted"] as? Bool == false && $0["done"] is Int }
                && list.compactMap { $0["end"] as? Int }.reduce(0, +) == 200
                && list.contains { ($0["remaining"] as? Int ?? 0) > 0 }
        }
        let page = try await OperationsEndpointTests.get(endpoint, "/metrics").body
        let handled = try #require(OperationsEndpointTests.sample(page, "sluice_records_handled_total", ["topic": "rp"]))
        #expect(handled > 0 && handled < 200, "mid-replay: \(handled)")
        try await Support.eventually("the replay to end", timeout: .seconds(60)) { !process.isRunning }
        #expect(process.terminationStatus == 0)
        #expect(try fixture.handled().count == 200)
        for line in try Self.lines(errors) {
            #expect((try? JSONSerialization.jsonObject(with: Data(line.utf8))) is [String: Any], "not JSON: \(line)")
        }
    }

    @Test("run --http-address 127.0.0.1:0 --log-format json: every stderr line is a JSON object with its metadata; the endpoint's address is logged; /metrics counts the 50 records; a second process on the same port fails with HTTP_ADDRESS_UNAVAILABLE; a malformed address with HTTP_ADDRESS_INVALID")
    func runWithEndpoint() async throws {
        let cluster = try Support.cluster(topics: ["cmd": 2, "cmd.DLT": 1])
        let fixture = try ConsumerProcessTests.Fixture()
        let (process, errors) = try Self.start(fixture, cluster, extra: ["--http-address", "127.0.0.1:0", "--log-format", "json", "--log-level", "info"])
        let endpoint = try await Self.loggedAddress(errors)
        #expect(endpoint.port > 0)
        try await ConsumerProcessTests.produceEvents(cluster, topic: "cmd", count: 50)
        try await Support.eventually("/metrics counting 50 handled records", timeout: .seconds(60)) {
            let page = try await OperationsEndpointTests.get(endpoint, "/metrics").body
            return OperationsEndpointTests.sample(page, "sluice_records_handled_total", ["topic": "cmd"]) == 50
        }
        #expect(try fixture.handled().count == 50)
        #expect(try await OperationsEndpointTests.get(endpoint, "/health/live").status == 200)
        #expect(try await OperationsEndpointTests.get(endpoint, "/health/ready").status == 200)

        let (taken, takenErrors) = try Self.start(fixture, cluster, extra: ["--http-address", "\(endpoint)"])
        taken.waitUntilExit()
        #expect(taken.terminationStatus != 0)
        let complaint = try String(contentsOf: takenErrors, encoding: .utf8)
        #expect(complaint.contains("HTTP_ADDRESS_UNAVAILABLE: cannot listen on \(endpoint): the port is in use by another process"), "\(complaint)")

        let (malformed, malformedErrors) = try Self.start(fixture, cluster, extra: ["--http-address", "localhost"])
        malformed.waitUntilExit()
        #expect(malformed.terminationStatus == 64)
        #expect(try String(contentsOf: malformedErrors, encoding: .utf8).contains("HTTP_ADDRESS_INVALID"))

        process.terminate()
        process.waitUntilExit()
        #expect(process.terminationReason == .exit && process.terminationStatus == 0)
        let lines = try Self.lines(errors)
        #expect(lines.count >= 3)
        var messages: [String: [String: Any]] = [:]
        for line in lines {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "not JSON: \(line)")
            for key in ["timestamp", "level", "label", "message", "source"] { #expect(object[key] is String, "\(key) in \(line)") }
            if let message = object["message"] as? String { messages[message] = object }
        }
        #expect(messages["consuming"]?["kafka.group"] as? String == "cmd", "\(messages.keys.sorted())")
        #expect(messages["consuming"]?["level"] as? String == "info")
        #expect(messages["consuming"]?["label"] as? String == "sluice.run")
        #expect((messages["partitions assigned"]?["kafka.partitions"] as? String)?.contains("cmd[0]") == true)
        #expect(messages["stopped"] != nil)
    }
}
