import Foundation
import Sluice
import Testing

@Suite("Pipeline primitives: retries, watermarks, dead-letter provenance, payload hashes, the in-memory store")
struct DispatchPrimitivesTests {
    @Test("Backoff grows exponentially, stays within its jitter band, and stops at the attempt and time bounds")
    func retryPolicy() {
        var policy = RetryPolicy()
        policy.maxAttempts = 4
        policy.initialDelay = .milliseconds(100)
        policy.multiplier = 2
        policy.jitter = 0.5
        policy.maxTotalDuration = .seconds(60)
        #expect(policy.delay(afterAttempt: 1, elapsed: .zero, random: 0) == .milliseconds(50))
        #expect(policy.delay(afterAttempt: 1, elapsed: .zero, random: 0.999_999) == .milliseconds(100))
        #expect(policy.delay(afterAttempt: 2, elapsed: .zero, random: 1) == .milliseconds(200))
        #expect(policy.delay(afterAttempt: 3, elapsed: .zero, random: 1) == .milliseconds(400))
        #expect(policy.delay(afterAttempt: 4, elapsed: .zero, random: 1) == nil, "four attempts in all")
        #expect(policy.delay(afterAttempt: 2, elapsed: .seconds(59.9), random: 1) == nil, "no attempt past the total bound")
        policy.maxDelay = .milliseconds(250)
        #expect(policy.delay(afterAttempt: 3, elapsed: .zero, random: 1) == .milliseconds(250))
        #expect(RetryPolicy.none.delay(afterAttempt: 1, elapsed: .zero, random: 0) == nil)
    }

    @Test("Watermarks only move forward and report only what changed since the last commit")
    func watermarks() {
        let marks = OffsetWatermarks()
        let p0 = TopicPartition(topic: "t", partition: 0)
        let p1 = TopicPartition(topic: "t", partition: 1)
        marks.advance(p0, to: 5)
        marks.advance(p0, to: 3)
        marks.advance(p1, to: 1)
        #expect(marks.uncommitted() == [p0: 5, p1: 1])
        marks.markCommitted([p0: 5])
        #expect(marks.uncommitted() == [p1: 1])
        marks.forget([p1])
        #expect(marks.uncommitted().isEmpty)
        #expect(marks.position(of: p1) == nil)
    }

    @Test("A dead-letter record keeps key, value and headers byte-exact and gains every provenance header")
    func deadLetterRecord() {
        let original = Record(
            topic: "billing", partition: 3, offset: 42, timestamp: RecordTimestamp(milliseconds: 1_700_000_000_123, type: .createTime),
            key: [0, 1, 255], value: [0xFF, 0xFE, 0x00],
            headers: [RecordHeader(name: "trace", value: [9, 9]), RecordHeader(name: "empty", value: nil),
                      RecordHeader(name: DeadLetterHeader.errorCode, string: "OLD")])
        let reason = DeadLetterReason(code: .payloadSchemaViolation, message: "expected integer", attempts: 1,
                                      handler: nil, eventID: "evt_1", correlationID: "corr_1")
        let dead = DeadLetterRecord(original: original, topic: "billing.DLT", group: "g", reason: reason,
                                    failedAt: Date(timeIntervalSince1970: 1_700_000_001.5))
        #expect(dead.key == original.key && dead.value == original.value)
        #expect(Array(dead.headers.prefix(2)) == Array(original.headers.prefix(2)))
        func header(_ name: String) -> String? {
            dead.headers.last { $0.name == name }.flatMap { $0.value }.map { String(decoding: $0, as: UTF8.self) }
        }
        #expect(header(DeadLetterHeader.originalTopic) == "billing")
        #expect(header(DeadLetterHeader.originalPartition) == "3")
        #expect(header(DeadLetterHeader.originalOffset) == "42")
        #expect(header(DeadLetterHeader.originalTimestamp) == "1700000000123")
        #expect(header(DeadLetterHeader.consumerGroup) == "g")
        #expect(header(DeadLetterHeader.errorCode) == "PAYLOAD_SCHEMA_VIOLATION")
        #expect(dead.headers.filter { $0.name == DeadLetterHeader.errorCode }.count == 1, "an old provenance header is replaced")
        #expect(header(DeadLetterHeader.errorRetryable) == "false")
        #expect(header(DeadLetterHeader.attempts) == "1")
        #expect(header(DeadLetterHeader.failedAt) == "2023-11-14T22:13:21.500Z")
        #expect(header(DeadLetterHeader.handler) == nil, "no handler ran")
        #expect(header(DeadLetterHeader.eventID) == "evt_1")
        #expect(header(DeadLetterHeader.correlationID) == "corr_1")
    }

    @Test("Payload hashes are SHA-256")
    func payloadHash() {
        #expect(PayloadHash.of([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(PayloadHash.of(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        let long = Array(String(repeating: "a", count: 1_000).utf8)
        #expect(PayloadHash.of(long) == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }

    /// Hashes printed by the hand-written SHA-256 that stores were filled with before swift-crypto
    /// (commit 83d6218): an envelope, and lengths around the 55/56/64-byte padding boundaries. A
    /// store's rows keep matching only while these stay equal.
    @Test("Payload hashes equal the ones earlier versions wrote into stores")
    func payloadHashMatchesEarlierVersions() {
        let envelope = Array(#"{"causation_id":"cmd:order:7","correlation_id":"corr-42","data":{"amount_minor":129900,"currency":"EUR","order_id":"ord_7d6c5b4a3z"},"event_id":"evt_01J9ZK3M7Q","event_type":"billing.payment_authorized","occurred_at":"2025-01-31T12:00:00.123Z","producer":"billing-service","schema_version":1,"subject":"invoice:inv_456"}"#.utf8)
        #expect(PayloadHash.of(envelope) == "aee7ff68bbabf89a5161a4f8120a425f8e8f10193e4d3a421c816388d20c36e9")
        let written: [Int: String] = [
            55: "8aa994584139d128848eeebc4e815639ba5ab6e6e39574195a63ac4f14f7c43b",
            56: "ad574708f75c044c9b85de64cb568ee7711ff4f36448c6242f053ba8f6cc2b63",
            63: "280ed3e8ff1df845b2e7dfe6ac6cee817bef20e783cc65abc41b818b4d2fe076",
            64: "c6ab9724ade5b6a7a1edfffb12f3aa9181351355af8fd08c919952ad211339dd",
            65: "788367c73c7ddf4c53f65e68cc0d943e6227ab55b0e78ba63ace822b1c6301c0",
            119: "3d610547d68216dedf7435a4fb6260353911f6b3fd3f18805ddb8be285d726fe",
            1000: "5097e7d587352f5097062ae679f37bda5802d9f875aba14c8cb4d1a188ada179",
        ]
        for (count, hash) in written {
            let bytes = (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            #expect(PayloadHash.of(bytes) == hash, "\(count) bytes")
        }
    }

    @Test("In-memory transactions commit all or nothing, savepoints undo only their own writes, and concurrent records conflict")
    func inMemoryStore() async throws {
        let store = InMemoryDedupeStore()
        let partition = TopicPartition(topic: "t", partition: 0)
        struct Boom: Error {}
        await #expect(throws: Boom.self) {
            try await store.withTransaction { transaction in
                transaction.setValue(.number(JSONNumber(Int64(5))), forKey: "balance")
                try await transaction.markProcessed(group: "g", handler: "h", eventID: "e1", payloadHash: "x", at: Date())
                try await transaction.storeNextOffset(1, for: partition, group: "g")
                throw Boom()
            }
        }
        #expect(store.committedValue(forKey: "balance") == nil)
        #expect(store.processedEvents.isEmpty)
        #expect(try await store.storedOffsets(group: "g", partitions: [partition]).isEmpty)

        _ = try await store.withTransaction { transaction in
            transaction.setValue(.number(JSONNumber(Int64(1))), forKey: "balance")
            _ = try? await transaction.withSavepoint {
                transaction.setValue(.number(JSONNumber(Int64(99))), forKey: "balance")
                throw Boom()
            }
            try await transaction.markProcessed(group: "g", handler: "h", eventID: "e1", payloadHash: "x", at: Date())
            try await transaction.storeNextOffset(1, for: partition, group: "g")
        }
        #expect(store.committedValue(forKey: "balance") == .number(JSONNumber(Int64(1))))
        #expect(try await store.storedOffsets(group: "g", partitions: [partition]) == [partition: 1])

        // Two transactions that both saw e2 as new: the second to commit conflicts.
        let error = await #expect(throws: SluiceError.self) {
            try await store.withTransaction { outer in
                try await outer.markProcessed(group: "g", handler: "h", eventID: "e2", payloadHash: "x", at: Date())
                _ = try await store.withTransaction { inner in
                    try await inner.markProcessed(group: "g", handler: "h", eventID: "e2", payloadHash: "x", at: Date())
                }
            }
        }
        #expect(error?.code == .storeConflict && error?.isRetriable == true)

        // Reprocessing updates the record instead of failing.
        _ = try await store.withTransaction { transaction in
            try await transaction.markProcessed(group: "g", handler: "h", eventID: "e1", payloadHash: "y", at: Date())
        }
        let e1 = try #require(store.processedEvents.first { $0.eventID == "e1" })
        #expect(e1.processCount == 2 && e1.payloadHash == "y")
        #expect(try await store.pruneProcessedEvents(olderThan: Date().addingTimeInterval(60)) == 2)
    }
}
