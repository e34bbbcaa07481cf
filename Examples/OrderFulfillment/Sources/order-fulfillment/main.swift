// The order-fulfillment service's executable: Sluice's `run`, `replay` and `parked`, plus a `report` of
// its state for the demo.

import ArgumentParser
import Logging
import Foundation
import OrderFulfillment
import Sluice
import SluiceCLI

/// `order-fulfillment report`: the service's tables, for a person.
struct ReportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "report", abstract: "Print orders, reservations and the order ledger.")

    @Option(help: "The dedupe store: a SQLite file path or a postgres:// URL.") var database: String

    func run() async throws {
        let store = try await Fulfillment.openStore(database: database, logger: .init(label: "report") { _ in SwiftLogNoOpLogHandler() })
        let (orders, reservations, ledger, processed) = try await store.withTransaction { transaction in
            (try await transaction.query("SELECT order_id, status, total_minor, currency, capture_mode FROM orders ORDER BY order_id"),
             try await transaction.query("SELECT order_id, sku, quantity, status, warehouse_id FROM reservations ORDER BY order_id, sku"),
             try await transaction.query("SELECT order_id, entry, amount_minor, currency, event_id FROM order_ledger ORDER BY order_id, event_id"),
             try await transaction.query("SELECT handler, count(*) AS events, sum(process_count) AS runs FROM sluice_processed_events GROUP BY handler ORDER BY handler"))
        }
        func text(_ value: SQLValue?) -> String {
            switch value ?? .null {
            case .null: "-"
            case .integer(let number): String(number)
            case .real(let number): String(number)
            case .text(let text): text
            case .blob(let bytes): "\(bytes.count) bytes"
            }
        }
        print("orders:")
        for row in orders { print("  \(text(row["order_id"]))  \(text(row["status"]))  total \(text(row["total_minor"])) \(text(row["currency"]))  capture \(text(row["capture_mode"]))") }
        print("reservations:")
        for row in reservations { print("  \(text(row["order_id"]))  \(text(row["sku"])) × \(text(row["quantity"]))  \(text(row["status"]))  \(text(row["warehouse_id"]))") }
        print("order ledger:")
        for row in ledger { print("  \(text(row["order_id"]))  \(text(row["entry"]))  \(text(row["amount_minor"])) \(text(row["currency"]))  (event \(text(row["event_id"])))") }
        print("processed events (dedupe store):")
        for row in processed { print("  \(text(row["handler"])): \(text(row["events"])) events, \(text(row["runs"])) handler runs") }
        await store.close()
    }
}

@main
struct OrderFulfillmentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "order-fulfillment",
        abstract: "The example order-fulfillment consumer service, built on Sluice.",
        subcommands: [
            RunCommand<Fulfillment>.self, ReplayCommand<Fulfillment>.self, ParkedCommand<Fulfillment>.self, ReportCommand.self,
        ])
}
