import Foundation
import Sluice
import Testing

/// The parking part of the ``DedupeStore`` contract, for every store (in-memory, SQLite,
/// PostgreSQL): park, append, list, the sequence in order, release record by record, discard,
/// and release claims between two processes.
enum ParkingConformance {
    /// Opens a store on the test's database: every call another store on the same data.
    typealias Open<Store> = @Sendable () async throws -> Store

    static let group = "parking-group"
    static let topic = "payments"
    static let time = Date(timeIntervalSince1970: 1_700_000_000)

    static func record(_ key: String?, offset: Int64, partition: Int32 = 2, value: String? = nil) -> Record {
        Record(
            topic: topic, partition: partition, offset: Offset(offset),
            timestamp: RecordTimestamp(milliseconds: 1_700_000_000_000 + offset, type: .createTime),
            key: key.map { Array($0.utf8) }, value: Array((value ?? #"{"n":\#(offset)}"#).utf8),
            headers: [RecordHeader(name: "traceparent", string: "00-abc-\(offset)-01"), RecordHeader(name: "empty", value: nil)])
    }

    struct Rollback: Error {}

    static func failure(_ code: SluiceError.Code = "PAYMENT_DECLINED") -> ParkingFailure {
        ParkingFailure(code: code, message: "declined", handler: "ledger", failedAt: time)
    }

    /// A parked key holds its head record and the records appended after it, byte-exact, in
    /// offset order; other keys are not parked; the list says count, oldest offset and failure.
    static func parkAppendAndList<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let k7 = ParkingKey("k7")
        let head = record("k7", offset: 10, value: #"{"é":"\u{0}"}"#)
        try await store.withTransaction { transaction in
            #expect(try await transaction.parkedKeys(group: group, topic: topic, among: [k7]) == [])
            try await transaction.park(head, key: k7, group: group, failure: failure())
        }
        try await store.withTransaction { transaction in
            #expect(try await transaction.parkedKeys(group: group, topic: topic, among: [k7, ParkingKey("k8")]) == [k7])
            // Appended out of order and once twice: the sequence is by offset, each record once.
            try await transaction.appendParked(record("k7", offset: 14), key: k7, group: group, at: time)
            try await transaction.appendParked(record("k7", offset: 12), key: k7, group: group, at: time)
            try await transaction.appendParked(record("k7", offset: 12), key: k7, group: group, at: time)
            // Parking an already parked key appends, keeping the first failure.
            try await transaction.park(record("k7", offset: 16), key: k7, group: group, failure: failure("OTHER"))
        }
        let (keys, sequence, otherGroup, otherTopic) = try await store.withTransaction { transaction in
            (
                try await transaction.parkedKeys(group: group, topic: nil),
                try await transaction.parkedRecords(group: group, topic: topic, key: k7, limit: nil),
                try await transaction.parkedKeys(group: "another-group", topic: nil),
                try await transaction.parkedKeys(group: group, topic: "orders")
            )
        }
        #expect(keys.count == 1)
        #expect(keys.first?.key == k7)
        #expect(keys.first?.topic == topic)
        #expect(keys.first?.partition == 2)
        #expect(keys.first?.records == 4)
        #expect(keys.first?.oldestOffset == Offset(10))
        #expect(keys.first?.failure.code == "PAYMENT_DECLINED")
        #expect(keys.first?.failure.handler == "ledger")
        #expect(keys.first?.parkedAt == time)
        #expect(sequence.map(\.record.offset.rawValue) == [10, 12, 14, 16])
        #expect(sequence.first?.record == head, "the head record comes back byte-exact: key, value, headers, timestamp")
        #expect(otherGroup.isEmpty && otherTopic.isEmpty, "parking is per group and topic")
    }

    /// Removing records head first releases the key with its last one; a rolled-back
    /// transaction parks nothing.
    static func removeReleasesWithTheLastRecord<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let key = ParkingKey("order-42")
        await #expect(throws: Rollback.self) {
            try await store.withTransaction { transaction in
                try await transaction.park(record("order-42", offset: 1), key: key, group: group, failure: failure())
                throw Rollback()
            }
        }
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.isEmpty)

        try await store.withTransaction { transaction in
            try await transaction.park(record("order-42", offset: 1), key: key, group: group, failure: failure())
            try await transaction.appendParked(record("order-42", offset: 3), key: key, group: group, at: time)
        }
        let first = try await store.withTransaction { try await $0.removeParked(group: group, topic: topic, key: key, partition: 2, offset: Offset(1)) }
        #expect(first == 1)
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: topic, among: [key]) } == [key])
        let last = try await store.withTransaction { try await $0.removeParked(group: group, topic: topic, key: key, partition: 2, offset: Offset(3)) }
        #expect(last == 0)
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: topic, among: [key]) } == [])
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.isEmpty)
    }

    /// A savepoint that rolls back takes its appends with it, and nothing else.
    static func savepointRollsBackAppends<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let key = ParkingKey("k1")
        try await store.withTransaction { transaction in
            try await transaction.park(record("k1", offset: 1), key: key, group: group, failure: failure())
            _ = try? await transaction.withSavepoint {
                try await transaction.appendParked(record("k1", offset: 2), key: key, group: group, at: time)
                throw Rollback()
            }
            try await transaction.appendParked(record("k1", offset: 3), key: key, group: group, at: time)
        }
        let offsets = try await store.withTransaction { try await $0.parkedRecords(group: group, topic: topic, key: key, limit: nil) }
            .map(\.record.offset.rawValue)
        #expect(offsets == [1, 3])
    }

    /// Two releases of one key: the first claim wins, the second is told who holds it; the same
    /// claimant renews; a stale claim is taken over; a failed release records its failure and
    /// frees the key for the next.
    static func releaseClaims<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let key = ParkingKey("k7")
        try await store.withTransaction { try await $0.park(record("k7", offset: 5), key: key, group: group, failure: failure()) }
        func claim(_ claimant: String, at seconds: Double, staleAfter: Double = 60) async throws -> ParkingClaim {
            let now = time.addingTimeInterval(seconds)
            return try await store.withTransaction { transaction in
                try await transaction.claimParkedKey(
                    group: group, topic: topic, key: key, claimant: claimant, at: now, staleBefore: now.addingTimeInterval(-staleAfter))
            }
        }
        #expect(try await claim("host-a:1", at: 0) == .claimed)
        #expect(try await claim("host-b:2", at: 1) == .heldBy("host-a:1", since: time))
        #expect(try await claim("host-a:1", at: 2) == .claimed, "the claimant renews its claim")
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.first?.releaseClaim == "host-a:1")
        #expect(try await claim("host-b:2", at: 100) == .claimed, "a claim older than the timeout is taken over")
        #expect(try await claim("host-a:1", at: 101) == .heldBy("host-b:2", since: time.addingTimeInterval(100)))

        let again = ParkingFailure(code: "STILL_DECLINED", message: "again", handler: "ledger", failedAt: time.addingTimeInterval(102))
        // Only the holder's failure counts.
        try await store.withTransaction { try await $0.releaseFailed(group: group, topic: topic, key: key, claimant: "host-a:1", failure: again) }
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.first?.failure.code == "PAYMENT_DECLINED")
        try await store.withTransaction { try await $0.releaseFailed(group: group, topic: topic, key: key, claimant: "host-b:2", failure: again) }
        let listed = try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.first
        #expect(listed?.failure.code == "STILL_DECLINED")
        #expect(listed?.releaseClaim == nil)
        #expect(listed?.parkedAt == time, "parked-at stays the first failure's time")
        #expect(try await claim("host-a:1", at: 103) == .claimed)
        #expect(
            try await store.withTransaction { transaction in
                try await transaction.claimParkedKey(
                    group: group, topic: topic, key: ParkingKey("never"), claimant: "x", at: time, staleBefore: time)
            } == .notParked)
    }

    /// Four releases claiming one key at the same time, each through a store of its own (as
    /// separate processes would: their own SQLite connection, their own PostgreSQL pool):
    /// exactly one wins, the others are told who holds it.
    static func concurrentClaimsOneWins<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let key = ParkingKey("k9")
        try await store.withTransaction { try await $0.park(record("k9", offset: 5), key: key, group: group, failure: failure()) }
        var stores: [Store] = []
        for _ in 0..<4 { stores.append(try await open()) }
        let results = try await withThrowingTaskGroup(of: ParkingClaim?.self) { tasks in
            for (claimant, store) in zip(["p1", "p2", "p3", "p4"], stores) {
                tasks.addTask {
                    for _ in 0..<20 {
                        do {
                            return try await store.withTransaction { transaction in
                                try await transaction.claimParkedKey(
                                    group: group, topic: topic, key: key, claimant: claimant, at: Date(),
                                    staleBefore: Date().addingTimeInterval(-600))
                            }
                        } catch let error as SluiceError where error.isRetriable {
                            try await Task.sleep(for: .milliseconds(5))  // a conflict: the store said try again
                        }
                    }
                    return nil
                }
            }
            var all: [ParkingClaim?] = []
            for try await result in tasks { all.append(result) }
            return all
        }
        #expect(results.filter { $0 == .claimed }.count == 1)
        #expect(results.filter { if case .heldBy = $0 { true } else { false } }.count == 3)
    }

    /// Discard drops the sequence, says how many records it held, and records who did it.
    static func discardDropsTheSequence<Store: DedupeStore>(_ open: Open<Store>) async throws {
        let store = try await open()
        let key = ParkingKey([0x00, 0xFF, 0x10])
        #expect(key.description == "hex:00ff10")
        #expect(ParkingKey(argument: "hex:00ff10") == key)
        try await store.withTransaction { transaction in
            try await transaction.park(record(nil, offset: 1), key: key, group: group, failure: failure())
            try await transaction.appendParked(record(nil, offset: 2), key: key, group: group, at: time)
        }
        let dropped = try await store.withTransaction { try await $0.discardParked(group: group, topic: topic, key: key, by: "alice@ops", at: time) }
        #expect(dropped == 2)
        #expect(try await store.withTransaction { try await $0.parkedKeys(group: group, topic: nil) }.isEmpty)
        #expect(try await store.withTransaction { try await $0.parkedRecords(group: group, topic: topic, key: key, limit: nil) }.isEmpty)
        #expect(try await store.withTransaction { try await $0.discardParked(group: group, topic: topic, key: key, by: "bob", at: time) } == 0)
    }
}
