import Foundation
import Logging
import Sluice
import Synchronization
import Testing

/// Records every pause and resume the dispatcher asks for.
final class RecordingFlowControl: PartitionFlowControl {
    let commands = Mutex<[String]>([])
    func pause(_ partitions: [TopicPartition]) async throws {
        commands.withLock { $0 += partitions.map { "pause \($0.partition)" } }
    }
    func resume(_ partitions: [TopicPartition]) async throws {
        commands.withLock { $0 += partitions.map { "resume \($0.partition)" } }
    }
}

@Suite("The per-partition ordered dispatcher")
struct PartitionDispatcherTests {
    static let logger = Logger(label: "dispatcher-tests") { _ in SwiftLogNoOpLogHandler() }

    static func records(_ topic: String, partition: Int32, _ offsets: Range<Int64>) -> [Record] {
        offsets.map { Record(topic: topic, partition: partition, offset: Offset($0), value: Array("r\($0)".utf8)) }
    }

    @Test("8 partitions, 100,000 records: strict order inside each partition, and a slow partition holds no other back")
    func orderAndIndependence() async throws {
        struct Progress { var last: [Int32: Int64] = [:]; var violations = 0; var doneAt: [Int32: ContinuousClock.Instant] = [:] }
        let progress = Mutex(Progress())
        let perPartition: Int64 = 12_500
        let watermarks = OffsetWatermarks()
        let dispatcher = PartitionDispatcher(
            watermarks: watermarks, flowControl: RecordingFlowControl(), logger: Self.logger
        ) { record in
            if record.partition == 0 { try? await Task.sleep(for: .microseconds(200)) }  // the slow one
            progress.withLock { progress in
                let expected = (progress.last[record.partition] ?? -1) + 1
                if record.offset.rawValue != expected { progress.violations += 1 }
                progress.last[record.partition] = record.offset.rawValue
                if record.offset.rawValue == perPartition - 1 { progress.doneAt[record.partition] = .now }
            }
            return .handled
        }
        let partitions = (0..<8).map { TopicPartition(topic: "orders", partition: Int32($0)) }
        dispatcher.assign(partitions)
        let start = ContinuousClock.now
        for chunk in stride(from: Int64(0), to: perPartition, by: 500) {
            for partition in 0..<Int32(8) {
                dispatcher.dispatch(Self.records("orders", partition: partition, chunk..<min(chunk + 500, perPartition)))
            }
        }
        let deadline = ContinuousClock.now + .seconds(120)
        while progress.withLock({ $0.doneAt.count < 8 }), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(20))
        }
        let result = progress.withLock { $0 }
        #expect(result.doneAt.count == 8)
        #expect(result.violations == 0)
        let slow = try #require(result.doneAt[0]) - start
        let fastest = (1..<Int32(8)).compactMap { result.doneAt[$0] }.map { $0 - start }.max() ?? .zero
        print("ordered dispatch: partitions 1-7 done after \(fastest), the slow partition 0 after \(slow)")
        #expect(fastest < slow, "the fast partitions finished while the slow one was still working")
        for partition in partitions { #expect(watermarks.position(of: partition) == Offset(perPartition)) }
        await dispatcher.drainAll(deadline: .now + .seconds(5))
    }

    @Test("A full lane pauses its partition and a drained one resumes it; memory stays bounded")
    func backpressure() async throws {
        let flow = RecordingFlowControl()
        let gate = Mutex(false)
        var configuration = PartitionDispatcher.Configuration()
        configuration.laneCapacity = 100
        configuration.resumeBelow = 20
        let dispatcher = PartitionDispatcher(configuration: configuration, watermarks: OffsetWatermarks(), flowControl: flow, logger: Self.logger) { _ in
            while !gate.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
            return .handled
        }
        let partition = TopicPartition(topic: "t", partition: 0)
        dispatcher.assign([partition])
        dispatcher.dispatch(Self.records("t", partition: 0, 0..<150))
        try await waitFor { flow.commands.withLock { $0 } == ["pause 0"] }
        #expect((dispatcher.laneDepths[partition] ?? 0) <= 150)
        gate.withLock { $0 = true }
        try await waitFor { flow.commands.withLock { $0 } == ["pause 0", "resume 0"] }
        await dispatcher.drainAll(deadline: .now + .seconds(5))
    }

    @Test("Revocation finishes the in-flight record, drops the queued ones, and reports the position to commit")
    func revocationFinishesInFlight() async throws {
        let started = Mutex<Int64?>(nil)
        let release = Mutex(false)
        let dispatcher = PartitionDispatcher(watermarks: OffsetWatermarks(), flowControl: RecordingFlowControl(), logger: Self.logger) { record in
            if record.offset == 3 {
                started.withLock { $0 = 3 }
                while !release.withLock({ $0 }) { try? await Task.sleep(for: .milliseconds(1)) }
            }
            return .handled
        }
        let partition = TopicPartition(topic: "t", partition: 0)
        dispatcher.assign([partition])
        dispatcher.dispatch(Self.records("t", partition: 0, 0..<10))
        try await waitFor { started.withLock { $0 } == 3 }
        let revoking = Task { await dispatcher.revoke([partition], deadline: .now + .seconds(30)) }
        // The revocation has been decided (the lane is gone) before record 3 may finish.
        try await waitFor { dispatcher.assignedPartitions.isEmpty }
        try await Task.sleep(for: .milliseconds(100))
        release.withLock { $0 = true }
        let positions = await revoking.value
        #expect(positions[partition] == Offset(4), "records 0-3 have outcomes; 4-9 were dropped for the next owner")
        #expect(dispatcher.assignedPartitions.isEmpty)
    }

    @Test("Revocation cancels an in-flight record still backing off at the deadline; it gets no outcome")
    func revocationDeadline() async throws {
        let dispatcher = PartitionDispatcher(watermarks: OffsetWatermarks(), flowControl: RecordingFlowControl(), logger: Self.logger) { record in
            if record.offset == 1 {
                do {
                    try await Task.sleep(for: .seconds(3_600))  // a long backoff
                } catch {
                    return .abandoned
                }
            }
            return .handled
        }
        let partition = TopicPartition(topic: "t", partition: 0)
        dispatcher.assign([partition])
        dispatcher.dispatch(Self.records("t", partition: 0, 0..<3))
        try await Task.sleep(for: .milliseconds(100))
        let positions = await dispatcher.revoke([partition], deadline: .now + .milliseconds(200))
        #expect(positions[partition] == Offset(1), "only record 0 has an outcome")
    }

    private func waitFor(_ condition: @Sendable () -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(20)
        while !condition() {
            guard ContinuousClock.now < deadline else { Issue.record("condition not reached"); return }
            try await Task.sleep(for: .milliseconds(5))
        }
    }
}
