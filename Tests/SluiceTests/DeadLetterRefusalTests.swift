import Foundation
import InMemoryLogging
import Logging
import Sluice
import SluiceTesting
import Synchronization
import Testing

/// A dead letter too large for its topic becomes a stub that fits; a refusal that only a fix of
/// authorization or configuration ends halts the partition with that fix logged. No broker: the
/// sinks here answer as ``DeadLetterWriteError`` says a Kafka sink does.
@Suite("Dead-letter refusals: stubs of letters too large, refusals that name their fix")
struct DeadLetterRefusalTests {
    typealias Group = GroupCommitTests

    static let value: [UInt8] = (0..<20_000).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }

    static func letter(key: [UInt8]? = Array("order-7".utf8), headers: [RecordHeader] = [RecordHeader(name: "app", string: "kept")]) -> DeadLetterRecord {
        let record = Record(
            topic: "t", partition: 2, offset: Offset(41), key: key, value: value, headers: headers)
        return DeadLetterRecord(
            original: record, topic: "t.DLT", group: "g",
            reason: DeadLetterReason(code: "ENVELOPE_NOT_JSON", message: "not JSON"), failedAt: Date(timeIntervalSince1970: 0))
    }

    static func stubHeaders(_ letter: DeadLetterRecord) -> (truncated: String?, size: String?, sha256: String?) {
        (letter.header(DeadLetterHeader.valueTruncated), letter.header(DeadLetterHeader.valueSize), letter.header(DeadLetterHeader.valueSHA256))
    }

    @Test("With a known limit, the first stub fits it, keeps key and headers, holds a prefix of the value and says the original's size and SHA-256; the last is the minimal stub")
    func stubWithLimit() throws {
        let full = Self.letter()
        #expect(!full.isTruncated)
        let stubs = full.stubs(fittingIn: 10_000)
        #expect(stubs.count == 2)
        let stub = try #require(stubs.first)
        #expect(stub.isTruncated)
        #expect(stub.estimatedSize <= 10_000)
        #expect(stub.estimatedSize > 9_000, "as much of the value as fits")
        #expect(stub.key == Array("order-7".utf8))
        #expect(stub.header("app") == "kept")
        let value = try #require(stub.value)
        #expect(value == Array(Self.value.prefix(value.count)))
        let headers = Self.stubHeaders(stub)
        #expect(headers.truncated == "true")
        #expect(headers.size == "20000")
        #expect(headers.sha256 == PayloadHash.of(Self.value))
        #expect(headers.sha256?.count == 64)
        // The provenance headers stay, in order, the stub's three after them.
        let names = stub.headers.map(\.name)
        #expect(names.first == "app")
        #expect(Array(names.suffix(3)) == [DeadLetterHeader.valueTruncated, DeadLetterHeader.valueSize, DeadLetterHeader.valueSHA256])
        for name in [DeadLetterHeader.originalTopic, DeadLetterHeader.originalPartition, DeadLetterHeader.originalOffset, DeadLetterHeader.errorCode] {
            #expect(stub.header(name) == full.header(name), "\(name)")
        }

        let minimal = try #require(stubs.last)
        #expect(minimal.key == nil && minimal.value == [] && minimal.header("app") == nil)
        #expect(Self.stubHeaders(minimal).sha256 == PayloadHash.of(Self.value))
        #expect(minimal.header(DeadLetterHeader.originalOffset) == "41")
        #expect(minimal.estimatedSize < stub.estimatedSize)
    }

    @Test("Headers that do not fit are dropped first, then the key; a limit below even the minimal stub leaves only the minimal stub")
    func stubDropsHeadersThenKey() throws {
        let big = [RecordHeader(name: "trace", value: Array(repeating: 0x41, count: 3_000))]
        let withoutHeaders = try #require(Self.letter(headers: big).stubs(fittingIn: 2_500).first)
        #expect(withoutHeaders.header("trace") == nil)
        #expect(withoutHeaders.key == Array("order-7".utf8))
        #expect(withoutHeaders.estimatedSize <= 2_500)

        let bigKey = Array(repeating: UInt8(0x4B), count: 3_000)
        let withoutKey = try #require(Self.letter(key: bigKey, headers: big).stubs(fittingIn: 2_500).first)
        #expect(withoutKey.key == nil && withoutKey.header("trace") == nil)
        #expect(try #require(withoutKey.value).count > 0, "the room left goes to the value")

        let tiny = Self.letter().stubs(fittingIn: 100)
        #expect(tiny.count == 1)
        #expect(tiny.first?.key == nil && tiny.first?.value == [])
    }

    @Test("With no known limit the stub has an empty value and keeps key and headers; then the minimal stub")
    func stubWithoutLimit() throws {
        let stubs = Self.letter().stubs(fittingIn: nil)
        #expect(stubs.count == 2)
        #expect(stubs[0].value == [] && stubs[0].key == Array("order-7".utf8) && stubs[0].header("app") == "kept")
        #expect(Self.stubHeaders(stubs[0]).size == "20000")
        #expect(stubs[1].value == [] && stubs[1].key == nil && stubs[1].header("app") == nil)
    }

    /// Accepts letters up to `limit` (its estimate) and refuses larger ones as too large,
    /// telling the limit when `tells`; refuses everything with `refusal` while it is set.
    final class LimitedSink: DeadLetterSink {
        let limit: Mutex<Int>
        let tells: Bool
        let refusal = Mutex<DeadLetterWriteError?>(nil)
        let attempts = Mutex<[DeadLetterRecord]>([])
        let written = Mutex<[DeadLetterRecord]>([])

        init(limit: Int, tells: Bool) {
            self.limit = Mutex(limit)
            self.tells = tells
        }

        func send(_ record: DeadLetterRecord) async throws {
            attempts.withLock { $0.append(record) }
            if let refusal = refusal.withLock({ $0 }) { throw refusal }
            let limit = self.limit.withLock { $0 }
            if record.estimatedSize > limit {
                throw DeadLetterWriteError(kind: .tooLarge(limit: tells ? limit : nil), code: "MSG_SIZE_TOO_LARGE", message: "too large")
            }
            written.withLock { $0.append(record) }
        }
    }

    static func pipeline(sink: any DeadLetterSink, logs: InMemoryLogHandler) throws -> EventPipeline<Group.CountingStore> {
        var registry = SchemaRegistry()
        try registry.register(eventType: "orders.item_counted", version: 1, schemaText: Group.schema)
        var configuration = EventPipeline<Group.CountingStore>.Configuration(group: "g")
        configuration.deadLetters.maxRetryDelay = .milliseconds(200)
        var logger = Logger(label: "refusals") { _ in logs }
        logger.logLevel = .debug
        return EventPipeline(
            configuration: configuration, decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry), router: EventRouter(), store: Group.CountingStore(),
            deadLetterSink: sink, logger: logger)
    }

    static let poison = Record(topic: "t", partition: 0, offset: Offset(5), key: Array("k".utf8), value: value)

    @Test("A letter over a known limit is written at once as a stub that fits: the record is dead-lettered, the partition never halts")
    func tooLargeWithLimit() async throws {
        let sink = LimitedSink(limit: 8_000, tells: true)
        let logs = InMemoryLogHandler()
        let outcome = try await Self.pipeline(sink: sink, logs: logs).process(Self.poison)
        #expect(outcome == .deadLettered("ENVELOPE_NOT_JSON"))
        #expect(sink.attempts.withLock { $0.count } == 2, "the letter, then its stub")
        let stub = try #require(sink.written.withLock { $0.first })
        #expect(stub.isTruncated && stub.key == Array("k".utf8) && (stub.value?.count ?? 0) > 7_000)
        #expect(!logs.entries.contains { $0.level == .critical }, "too large is no outage")
        #expect(logs.entries.contains { "\($0.message)".contains("dead-lettered as a stub") })
    }

    @Test("With no limit known: an empty-value stub; refused too, the minimal stub; refused too, a critical refusal naming the fix, retried until it fits")
    func tooLargeEvenMinimal() async throws {
        let sink = LimitedSink(limit: 100, tells: false)
        let logs = InMemoryLogHandler()
        let pipeline = try Self.pipeline(sink: sink, logs: logs)
        let task = Task { await pipeline.process(Self.poison) }
        let deadline = ContinuousClock.now + .seconds(20)
        while sink.attempts.withLock({ $0.count }) < 5, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let tried = sink.attempts.withLock { $0 }
        #expect(tried[0].isTruncated == false)
        #expect(tried[1].value == [] && tried[1].key == Array("k".utf8))
        #expect(tried[2].value == [] && tried[2].key == nil)
        #expect(tried[3].estimatedSize == tried[2].estimatedSize, "the minimal stub is retried")
        let critical = try #require(logs.entries.first { $0.level == .critical })
        #expect("\(critical.message)".contains("raise max.message.bytes of topic t.DLT"))
        #expect(critical.metadata["fix"] != nil)

        sink.limit.withLock { $0 = 10_000 }
        #expect(await task.value == .deadLettered("ENVELOPE_NOT_JSON"))
        #expect(sink.written.withLock { $0.first?.value } == [], "the minimal stub it got to")
        #expect(logs.entries.contains { "\($0.message)" == "dead-letter topic writable again; partition continues" })
    }

    @Test("A refusal halts with a critical log naming the fix, retried with backoff; once fixed, the whole letter is written")
    func refusalNamesFix() async throws {
        let sink = LimitedSink(limit: 1 << 20, tells: true)
        sink.refusal.withLock {
            $0 = DeadLetterWriteError(
                kind: .refused(fix: "grant WRITE (and DESCRIBE) on topic t.DLT to the dead-letter producer's principal"),
                code: "TOPIC_AUTHORIZATION_FAILED", message: "not authorized")
        }
        let logs = InMemoryLogHandler()
        let pipeline = try Self.pipeline(sink: sink, logs: logs)
        let task = Task { await pipeline.process(Self.poison) }
        let deadline = ContinuousClock.now + .seconds(20)
        while sink.attempts.withLock({ $0.count }) < 3, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(5)) }
        let criticals = logs.entries.filter { $0.level == .critical }
        #expect(criticals.count >= 2)
        #expect(criticals.allSatisfy { "\($0.message)".contains("grant WRITE (and DESCRIBE) on topic t.DLT") })
        #expect(criticals.first?.metadata["error.code"] == "TOPIC_AUTHORIZATION_FAILED")
        #expect(sink.attempts.withLock { $0.allSatisfy { !$0.isTruncated } }, "a refusal is no reason for a stub")

        sink.refusal.withLock { $0 = nil }
        #expect(await task.value == .deadLettered("ENVELOPE_NOT_JSON"))
        #expect(sink.written.withLock { $0.first?.value } == Self.value)
    }

    @Test("Any other error a sink throws is an outage, as before: halted, logged, retried")
    func otherErrorsAreTransient() async throws {
        final class FlakySink: DeadLetterSink {
            let attempts = Atomic<Int>(0)
            func send(_ record: DeadLetterRecord) async throws {
                if attempts.add(1, ordering: .relaxed).newValue < 3 { throw SluiceError(code: "NOT_ENOUGH_REPLICAS", message: "x", isRetriable: true) }
            }
        }
        let sink = FlakySink()
        let logs = InMemoryLogHandler()
        let outcome = try await Self.pipeline(sink: sink, logs: logs).process(Self.poison)
        #expect(outcome == .deadLettered("ENVELOPE_NOT_JSON"))
        #expect(logs.entries.filter { "\($0.message)" == "cannot write to the dead-letter topic; partition halted" }.count == 2)
    }
}
