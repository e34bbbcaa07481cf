import Foundation
import Logging
import Sluice
import SluiceKafka
import Testing

/// A consumer service in its own process (`sluice-test-consumer run …`), killed and restarted.
@Suite("Consumer processes killed and restarted", .serialized)
struct ConsumerProcessTests {
    typealias Support = KafkaTestSupport
    typealias Pipeline = PipelineTestSupport

    struct Fixture {
        let directory: URL
        let ledger: URL
        let schemas: URL

        init() throws {
            directory = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-process-\(UUID().uuidString)")
            schemas = directory.appendingPathComponent("EventSchemas/orders.item_added")
            try FileManager.default.createDirectory(at: schemas, withIntermediateDirectories: true)
            try Pipeline.itemAddedSchema.write(to: schemas.appendingPathComponent("v1.schema.json"), atomically: true, encoding: .utf8)
            ledger = directory.appendingPathComponent("ledger.txt")
            _ = FileManager.default.createFile(atPath: ledger.path, contents: nil)
        }

        func start(
            _ cluster: EmbeddedKafkaCluster, topic: String, group: String, delayMicroseconds: Int = 0,
            database: String = "memory", extra: [String] = []
        ) throws -> Process {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
                .appendingPathComponent("sluice-test-consumer")
            process.arguments = [
                "run", "--bootstrap-servers", cluster.bootstrapServers, "--topic", topic, "--group", group,
                "--database", database, "--schemas", directory.appendingPathComponent("EventSchemas").path,
                "--shutdown-timeout", "10", "--log-level", "error",
                "-X", "session.timeout.ms=6000", "-X", "heartbeat.interval.ms=300",
            ] + extra
            var environment = ProcessInfo.processInfo.environment
            environment["SLUICE_TEST_LEDGER"] = ledger.path
            environment["SLUICE_TEST_HANDLER_DELAY_US"] = String(delayMicroseconds)
            process.environment = environment
            try process.run()
            return process
        }

        /// Every line of the ledger: one per handler call.
        func handled() throws -> [String] {
            try String(contentsOf: ledger, encoding: .utf8).split(separator: "\n").map(String.init)
        }
    }

    static func produceEvents(_ cluster: EmbeddedKafkaCluster, topic: String, count: Int) async throws {
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<count).map {
            ProducerRecord(topic: topic, key: Support.bytes("k\($0 % 31)"), value: Pipeline.envelope(id: "e\($0)", data: #"{"key":"k","seq":\#($0)}"#))
        })
        try await producer.close()
    }

    @Test("SIGKILL of the consumer process mid-stream, three times, then restarts: every event handled at least once, none skipped")
    func sigkill() async throws {
        let total = 20_000
        let cluster = try Support.cluster(topics: ["killed": 4])
        try await Self.produceEvents(cluster, topic: "killed", count: total)
        let fixture = try Fixture()
        for round in 1...3 {
            let process = try fixture.start(cluster, topic: "killed", group: "killed", delayMicroseconds: 100)
            let target = round * 4_000
            try await Support.eventually("\(target) events handled before kill \(round)", timeout: .seconds(90)) {
                try Set(fixture.handled()).count >= target
            }
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)
        }
        let last = try fixture.start(cluster, topic: "killed", group: "killed")
        try await Support.eventually("every event handled", timeout: .seconds(120)) { try Set(fixture.handled()).count >= total }
        last.terminate()
        last.waitUntilExit()
        let handled = try fixture.handled()
        #expect(Set(handled) == Set((0..<total).map { "e\($0)" }), "none skipped")
        print("after 3 SIGKILLs: \(handled.count) handler calls for \(total) events (\(handled.count - total) redeliveries after the last commits)")
    }

    @Test("SIGTERM: the process drains, commits and exits within its timeout; a restart handles nothing twice")
    func sigterm() async throws {
        let total = 20_000
        let cluster = try Support.cluster(topics: ["terminated": 4])
        try await Self.produceEvents(cluster, topic: "terminated", count: total)
        let fixture = try Fixture()
        let first = try fixture.start(cluster, topic: "terminated", group: "terminated", delayMicroseconds: 1_000)
        try await Support.eventually("some events handled", timeout: .seconds(60)) { try fixture.handled().count >= 1_000 }
        let signalledAt = ContinuousClock.now
        first.terminate()
        first.waitUntilExit()
        #expect(ContinuousClock.now - signalledAt < .seconds(15), "shutdown within --shutdown-timeout 10 plus leaving the group")
        #expect(first.terminationReason == .exit && first.terminationStatus == 0)
        let afterFirst = try fixture.handled().count
        #expect(afterFirst < total)

        let second = try fixture.start(cluster, topic: "terminated", group: "terminated")
        try await Support.eventually("the rest handled", timeout: .seconds(60)) { try Set(fixture.handled()).count >= total }
        second.terminate()
        second.waitUntilExit()
        let handled = try fixture.handled()
        #expect(handled.count == total, "handled twice across the restart: \(handled.count - Set(handled).count)")
    }

    @Test("SIGTERM while a partition is halted on its dead-letter topic: the process exits within 5 s (its shutdown timeout is 10 s); after a restart the poison record and everything behind it are handled once")
    func sigtermWhileHalted() async throws {
        let total = 8_000
        let poison = 400  // partition 0's offset 400
        let cluster = try Support.cluster(topics: ["halted": 4, "halted.DLT": 1])
        let producer = try Support.producer(cluster)
        try await Support.produceAll(producer, (0..<total).map { index in
            let partition = Int32(index % 4)
            let value = partition == 0 && index / 4 == poison
                ? Support.bytes("not json")
                : Pipeline.envelope(id: "e\(index)", data: #"{"key":"k","seq":\#(index)}"#)
            return ProducerRecord(topic: "halted", partition: partition, value: value)
        })
        // The broker refuses every write: the dead-letter producer retries its letter until its
        // delivery timeout (30 s by default) while the partition stays halted.
        cluster.injectErrors(Array(repeating: .notEnoughReplicas, count: 1_000_000), into: .produce)
        let fixture = try Fixture()
        let first = try fixture.start(cluster, topic: "halted", group: "halted")
        let beforePoison = 3 * (total / 4) + poison
        try await Support.eventually("every record before the poison one handled", timeout: .seconds(90)) {
            try fixture.handled().count >= beforePoison
        }
        try await Task.sleep(for: .seconds(2))
        #expect(try fixture.handled().count == beforePoison, "nothing behind the halted record ran")
        let signalledAt = ContinuousClock.now
        first.terminate()
        first.waitUntilExit()
        let took = ContinuousClock.now - signalledAt
        #expect(took < .seconds(5), "SIGTERM with a halted partition took \(took)")
        print("SIGTERM with a halted partition: exited after \(took)")
        #expect(first.terminationReason == .exit && first.terminationStatus == 0)

        cluster.clearInjectedErrors(for: .produce)
        let second = try fixture.start(cluster, topic: "halted", group: "halted")
        try await Support.eventually("the rest handled", timeout: .seconds(90)) { try fixture.handled().count >= total - 1 }
        try await Task.sleep(for: .seconds(1))
        second.terminate()
        second.waitUntilExit()
        let handled = try fixture.handled()
        #expect(handled.count == total - 1, "handled twice across the restart: \(handled.count - Set(handled).count)")
        #expect(Set(handled) == Set((0..<total).filter { $0 % 4 != 0 || $0 / 4 != poison }.map { "e\($0)" }))
        let dlt = try KafkaConsumer(configuration: Support.consumerConfiguration(cluster, group: nil), logger: Support.logger)
        try await dlt.assign([TopicPartition(topic: "halted.DLT", partition: 0): .beginning])
        let letters = try await Support.collect(from: dlt, what: "the dead letter") { !$0.isEmpty }
        try await dlt.close()
        // A letter the first process gave up on may still have been written (at least once);
        // every letter is the poison record's.
        #expect(letters.allSatisfy { letter in
            letter.headers.last { $0.name == DeadLetterHeader.originalOffset }?.value == Array("\(poison)".utf8)
        })
        try await producer.close()
    }

    @Test("Backpressure: a backlog of 1,000,000 records behind a slow handler keeps the consumer's resident memory bounded")
    func backpressure() async throws {
        let total = 1_000_000
        // Wide, because the embedded broker keeps only about 5 MB per partition.
        let cluster = try Support.cluster(topics: ["backlog": 96])
        let producer = try Support.producer(cluster)
        let padding = String(repeating: "p", count: 120)
        var produced = 0
        var bytes = 0
        while produced < total {
            let chunk = (produced..<min(produced + 50_000, total)).map { index in
                ProducerRecord(topic: "backlog", partition: Int32(index % 96),
                               value: Pipeline.envelope(id: "b\(index)", data: #"{"key":"\#(padding)","seq":\#(index)}"#))
            }
            bytes += chunk.reduce(0) { $0 + ($1.value?.count ?? 0) }
            try await Support.produceAll(producer, chunk)
            produced += chunk.count
        }
        try await producer.close()

        let fixture = try Fixture()
        let process = try fixture.start(
            cluster, topic: "backlog", group: "backlog", delayMicroseconds: 5_000, database: "memory-forgetful",
            extra: ["--lane-capacity", "200", "--buffered-records", "5000",
                    "-X", "queued.max.messages.kbytes=8192", "-X", "fetch.max.bytes=4194304"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        func residentKilobytes(_ field: String) throws -> Int {
            let status = try String(contentsOfFile: "/proc/\(process.processIdentifier)/status", encoding: .utf8)
            let line = try #require(status.split(separator: "\n").first { $0.hasPrefix(field + ":") })
            return try #require(Int(line.split(separator: " ").dropFirst().first ?? ""))
        }
        try await Support.eventually("the consumer to work through its backlog", timeout: .seconds(120)) {
            try fixture.handled().count >= 20_000
        }
        let early = try residentKilobytes("VmRSS")
        let handledEarly = try fixture.handled().count
        try await Task.sleep(for: .seconds(15))
        let late = try residentKilobytes("VmRSS")
        let peak = try residentKilobytes("VmHWM")
        let handled = try fixture.handled().count
        print("backpressure: \(total) records (\(bytes / 1_048_576) MiB) waiting; RSS \(early / 1_024) MiB after \(handledEarly) handled, \(late / 1_024) MiB after \(handled); peak \(peak / 1_024) MiB")
        #expect(handled < total / 2, "the handler is slow enough to leave a backlog")
        #expect(peak < 150 * 1_024, "resident memory stays far below the backlog's size (the throughput issue's bound)")
        #expect(late < early + 64 * 1_024, "and does not grow with the records handled")
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
