// A consumer service for the tests that kill processes: it mounts Sluice's `run` command and
// appends the id of every event it handles to a ledger file (SLUICE_TEST_LEDGER), so the test can
// tell, across crashes and restarts, what was handled and how often.

import ArgumentParser
import Foundation
import Logging
import Sluice
import SluiceCLI
import SluiceTestServiceSupport

enum TestConsumer: ConsumerServiceDefinition {
    typealias Store = InMemoryDedupeStore

    struct Item: Decodable, Sendable {
        var key: String
        var seq: Int
    }

    static func router() -> EventRouter<InMemoryDedupeStore.Transaction> {
        let ledger = Ledger(path: ProcessInfo.processInfo.environment["SLUICE_TEST_LEDGER"] ?? "/dev/null")
        let delay = Int(ProcessInfo.processInfo.environment["SLUICE_TEST_HANDLER_DELAY_US"] ?? "0") ?? 0
        var router = EventRouter<InMemoryDedupeStore.Transaction>()
        router.on("orders.item_added", as: Item.self, handler: "ledger") { event, _ in
            if delay > 0 { try await Task.sleep(for: .microseconds(delay)) }
            ledger.append(event.eventID)
        }
        return router
    }

    static func openStore(database: String, logger: Logger) async throws -> InMemoryDedupeStore {
        switch database {
        case "memory":
            return InMemoryDedupeStore()
        case "memory-forgetful":
            // Remembers no processed events, so a memory measurement sees only the pipeline.
            let store = InMemoryDedupeStore()
            Task {
                while true {
                    try await Task.sleep(for: .milliseconds(200))
                    _ = try await store.pruneProcessedEvents(olderThan: .distantFuture)
                }
            }
            return store
        default:
            throw ValidationError("the test consumer has only in-memory stores: --database memory | memory-forgetful")
        }
    }
}

@main
struct TestConsumerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sluice-test-consumer", subcommands: [RunCommand<TestConsumer>.self, ReplayCommand<TestConsumer>.self])
}
