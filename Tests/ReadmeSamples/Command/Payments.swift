// README.md's service sample, verbatim (ReadmeSampleTests checks it stays so): compiled here.

import ArgumentParser
import Sluice
import SluiceCLI

enum Payments: ConsumerServiceDefinition {
    typealias Store = SQLDedupeStore              // SQLite or PostgreSQL, chosen by --database

    struct PaymentAuthorized: Decodable, Sendable {
        var orderID: String
        var amountMinor: Int
        enum CodingKeys: String, CodingKey { case orderID = "order_id", amountMinor = "amount_minor" }
    }

    // The service's own tables, applied once at start-up after the store's own.
    static func migrations() -> [StoreMigration] {
        [StoreMigration(id: "payments-1", sql: "CREATE TABLE paid (order_id TEXT PRIMARY KEY, amount_minor BIGINT NOT NULL)")]
    }

    static func router() -> EventRouter<SQLDedupeStore.Transaction> {
        var router = EventRouter<SQLDedupeStore.Transaction>()
        // Events of older schema versions are upcast to v2 before the handler sees them.
        router.on("billing.payment_authorized", as: PaymentAuthorized.self, version: 2, handler: "record-payment") { event, context in
            guard event.payload.amountMinor > 0 else {
                // Not retriable: straight to the dead-letter topic.
                throw SluiceError(code: "AMOUNT_INVALID", message: "nothing was paid", isRetriable: false)
            }
            // The same transaction as the processed-event record and the partition's offset.
            try await context.transaction.execute(
                "INSERT INTO paid (order_id, amount_minor) VALUES (?, ?) ON CONFLICT (order_id) DO NOTHING",
                [.text(event.payload.orderID), SQLValue(event.payload.amountMinor)])
            if !context.isReplay {
                // Side effects that must not happen twice (an email, a call to a payment provider).
            }
        }
        return router
    }
}
