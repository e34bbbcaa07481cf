// README.md's staging replay test (ReadmeSampleTests checks its lines appear here in order).

import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceTesting
import Testing
@testable import readme_payments

/// Compiled, not run: its snapshot path is the reader's. The example service's
/// `StagingReplayTests` run the same harness on a real recording.
@Suite(.disabled("README sample: compiled only; Examples/OrderFulfillment's StagingReplayTests run the harness for real"))
struct ReadmeStagingSample {

    @Test func recordedPaymentsReplayCleanly() async throws {
        let store = try await SQLDedupeStore.open(
            .sqlite(path: FileManager.default.temporaryDirectory.appendingPathComponent("\(UUID()).sqlite").path),
            migrations: Payments.migrations(), logger: Logger(label: "test"))
        let harness = try ReplayTestHarness(
            registry: SchemaRegistry(directory: "EventSchemas"), upcasters: Payments.upcasters(),
            router: Payments.router(), store: store)
        let result = try await harness.replay(snapshot: "Fixtures/orders.jsonl")
        #expect(result.deadLetters.isEmpty)
        #expect(result.causalOrderViolations.isEmpty)      // every effect handled after its cause
        #expect(try await harness.idempotenceProblems(snapshot: "Fixtures/orders.jsonl").isEmpty)
    }
}
