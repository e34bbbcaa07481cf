import Foundation
import Logging
import OrderFulfillment
import Sluice
import SluiceCLI
import SluiceTesting
import Synchronization
import Testing

/// The staging replay test: the recorded snapshot of a morning's orders, run through the real
/// handlers and a temporary SQLite store with `ReplayTestHarness`, no broker.
@Suite("Order fulfillment: the staging replay of recorded orders")
struct StagingReplayTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent()  // Tests/OrderFulfillmentTests
        .deletingLastPathComponent().deletingLastPathComponent()  // Examples/OrderFulfillment
    static let snapshot = root.appendingPathComponent("Fixtures/recorded-orders.jsonl").path
    static let schemas = root.deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("EventSchemas").path

    /// Notifications sent, to check replays send none.
    final class RecordingNotifier: CustomerNotifier {
        let sent = Mutex<[String]>([])
        func paymentReceived(orderID: String, amountMinor: Int, currency: String) async throws {
            sent.withLock { $0.append(orderID) }
        }
    }

    static func harness(notifier: RecordingNotifier) async throws -> ReplayTestHarness<SQLDedupeStore> {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulfillment-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try await SQLDedupeStore.open(
            .sqlite(path: directory.appendingPathComponent("staging.sqlite").path), migrations: Fulfillment.migrations(),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        return try ReplayTestHarness(
            registry: SchemaRegistry(directory: schemas), upcasters: Fulfillment.upcasters(),
            router: Fulfillment.router(notifier: notifier), store: store, group: "order-fulfillment")
    }

    @Test("The recorded orders replay with no dead letters, causes before effects, and the expected state; customers are not notified again")
    func recordedOrders() async throws {
        let notifier = RecordingNotifier()
        let harness = try await Self.harness(notifier: notifier)
        let result = try await harness.replay(snapshot: Self.snapshot)
        #expect(result.deadLetters.isEmpty, "\(result.deadLetterCodes)")
        #expect(result.causalOrderViolations.isEmpty, "\(result.causalOrderViolations)")
        #expect(result.summary.handled == 12)
        #expect(notifier.sent.withLock { $0.isEmpty }, "a replay notifies nobody")

        let state = try await harness.store.withTransaction { transaction in
            (try await transaction.query("SELECT order_id, status, capture_mode FROM orders ORDER BY order_id"),
             try await transaction.query("SELECT count(*) AS n FROM reservations WHERE status = 'reserved'"),
             try await transaction.query("SELECT sum(amount_minor) AS total FROM order_ledger"))
        }
        #expect(state.0.map { $0["status"]?.string } == ["paid", "paid", "paid", "paid"])
        // v1 payments were upcast: automatic capture; v2 ones say manual.
        #expect(state.0.map { $0["capture_mode"]?.string } == ["automatic", "manual", "automatic", "manual"])
        #expect(state.1[0]["n"]?.int == 5)
        #expect(state.2[0]["total"]?.int == 1999 + 9000 + 1000 + 4800 + 25900)
    }

    @Test("Replaying the snapshot a second time changes nothing")
    func idempotent() async throws {
        let harness = try await Self.harness(notifier: RecordingNotifier())
        let problems = try await harness.idempotenceProblems(snapshot: Self.snapshot)
        #expect(problems.isEmpty, "\(problems)")
    }

    @Test("A snapshot whose payment comes before its order is caught: the payment is dead-lettered and the causal order check names it")
    func causeAfterEffect() async throws {
        var records = try SnapshotReader(path: Self.snapshot).readAll()
        // Move the first payment to before its order (as clock skew between producers would).
        let paymentIndex = try #require(records.firstIndex { $0.topic == "billing.events" })
        records[paymentIndex].timestamp = RecordTimestamp(milliseconds: (records[0].timestamp?.milliseconds ?? 0) - 60_000, type: .createTime)
        let harness = try await Self.harness(notifier: RecordingNotifier())
        let result = try await harness.replay(records)
        #expect(result.deadLetterCodes["evt-pay-1"] == .handlerRetriesExhausted)
        #expect(result.causalOrderViolations.map(\.effect.eventID) == ["evt-pay-1"])
    }
}

/// The live path: outside a replay, the customer is notified once per payment.
@Suite("Order fulfillment: handlers")
struct FulfillmentHandlerTests {
    @Test("Live, a payment notifies its customer once, also when redelivered; a payment for an unknown order is dead-lettered as ORDER_UNKNOWN")
    func livePayments() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("fulfillment-live-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try await SQLDedupeStore.open(
            .sqlite(path: directory.appendingPathComponent("live.sqlite").path), migrations: Fulfillment.migrations(),
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let notifier = StagingReplayTests.RecordingNotifier()
        let registry = try SchemaRegistry(directory: StagingReplayTests.schemas)
        let sink = RecordingDeadLetterSink()
        let pipeline = EventPipeline(
            configuration: .init(group: "order-fulfillment"), decoder: EnvelopeDecoder(registry: registry),
            upcasters: try UpcasterChain(registry: registry, upcasters: Fulfillment.upcasters()),
            router: Fulfillment.router(notifier: notifier), store: store, deadLetterSink: sink,
            logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let records = try SnapshotReader(path: StagingReplayTests.snapshot).readAll().sorted { ($0.timestamp?.milliseconds ?? 0) < ($1.timestamp?.milliseconds ?? 0) }
        for record in records + records.filter({ $0.topic == "billing.events" }) {
            _ = await pipeline.process(record)
        }
        #expect(notifier.sent.withLock { $0 } == ["ord_00000001", "ord_00000002", "ord_00000003", "ord_00000004"])

        var stray = records.first { $0.topic == "billing.events" }!
        stray.value = Array(String(decoding: stray.value!, as: UTF8.self)
            .replacingOccurrences(of: "ord_00000001", with: "ord_99999999").replacingOccurrences(of: "evt-pay-1", with: "evt-pay-stray").utf8)
        #expect(await pipeline.process(stray) == .deadLettered(.handlerRetriesExhausted))
        #expect(sink.records.last?.header(DeadLetterHeader.handler) == "book-payment")
        #expect(sink.records.last?.header(DeadLetterHeader.errorMessage)?.contains("ORDER_UNKNOWN") == true)
    }
}
