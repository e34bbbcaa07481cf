import Foundation
import Logging
import Sluice
import SluiceCLI

/// The order-fulfillment service: it records placed orders and their stock reservations, books
/// authorized payments in an order ledger, and tells the customer their payment arrived.
///
/// State lives in SQLite (or PostgreSQL) tables written through the handler's transaction, so an
/// event's effects, its processed-event record and its partition's offset commit together. The
/// handlers are idempotent by event id as well (upserts), so a `reprocess` replay rebuilds state
/// instead of doubling it.
public enum Fulfillment: ConsumerServiceDefinition {
    public typealias Store = SQLDedupeStore

    /// The topics the service consumes.
    public static let topics = ["orders.events", "billing.events", "inventory.events"]

    public static var schemasDirectory: String {
        ProcessInfo.processInfo.environment["FULFILLMENT_SCHEMAS"] ?? "EventSchemas"
    }

    /// v1 payments have no `capture_mode`; v1 behaviour was automatic capture.
    public static func upcasters() -> [Upcaster] {
        [
            Upcaster(eventType: "billing.payment_authorized", fromVersion: 1) { data in
                guard case .object(var object) = data else { return data }
                if object["capture_mode"] == nil { object.members.append(("capture_mode", .string("automatic"))) }
                return .object(object)
            },
        ]
    }

    public static func migrations() -> [StoreMigration] {
        [
            StoreMigration(id: "fulfillment-1-orders", sql: """
                CREATE TABLE orders (
                    order_id TEXT PRIMARY KEY, customer_id TEXT NOT NULL, currency TEXT NOT NULL,
                    total_minor BIGINT NOT NULL, status TEXT NOT NULL, capture_mode TEXT
                );
                CREATE TABLE reservations (
                    order_id TEXT NOT NULL, sku TEXT NOT NULL, quantity BIGINT NOT NULL, status TEXT NOT NULL, warehouse_id TEXT,
                    PRIMARY KEY (order_id, sku)
                );
                CREATE TABLE order_ledger (
                    event_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, entry TEXT NOT NULL, amount_minor BIGINT NOT NULL, currency TEXT NOT NULL
                )
                """),
        ]
    }

    public static func router() -> EventRouter<SQLDedupeStore.Transaction> {
        router(notifier: OutboxNotifier.fromEnvironment())
    }

    // MARK: - Payloads

    public struct OrderPlaced: Decodable, Sendable {
        public struct LineItem: Decodable, Sendable {
            public var sku: String
            public var quantity: Int
            public var unitPriceMinor: Int
            enum CodingKeys: String, CodingKey { case sku, quantity, unitPriceMinor = "unit_price_minor" }
        }

        public var orderID: String
        public var customerID: String
        public var currency: String
        public var totalMinor: Int
        public var lineItems: [LineItem]
        enum CodingKeys: String, CodingKey {
            case orderID = "order_id", customerID = "customer_id", currency, totalMinor = "total_minor", lineItems = "line_items"
        }
    }

    public struct StockReserved: Decodable, Sendable {
        public struct Item: Decodable, Sendable {
            public var sku: String
            public var quantity: Int
        }

        public var orderID: String
        public var warehouseID: String
        public var items: [Item]
        enum CodingKeys: String, CodingKey { case orderID = "order_id", warehouseID = "warehouse_id", items }
    }

    /// `billing.payment_authorized` as of v2 (v1 events arrive upcast).
    public struct PaymentAuthorized: Decodable, Sendable {
        public var paymentID: String
        public var orderID: String
        public var amountMinor: Int
        public var currency: String
        public var captureMode: String
        enum CodingKeys: String, CodingKey {
            case paymentID = "payment_id", orderID = "order_id", amountMinor = "amount_minor", currency, captureMode = "capture_mode"
        }
    }

    /// An event about an order this service has not seen. Retriable: an order's events arrive on
    /// three topics, and Kafka orders records only within a partition, so the payment may simply
    /// have overtaken its order. When retries run out, the record goes to the dead-letter topic
    /// as `HANDLER_RETRIES_EXHAUSTED` with this error in its message.
    public static func orderUnknown(_ orderID: String) -> SluiceError {
        SluiceError(code: "ORDER_UNKNOWN", message: "no order \(orderID) was placed (yet)", isRetriable: true)
    }

    // MARK: - Handlers

    /// The handlers, telling customers through `notifier`.
    public static func router(notifier: some CustomerNotifier) -> EventRouter<SQLDedupeStore.Transaction> {
        var router = EventRouter<SQLDedupeStore.Transaction>()

        router.on("orders.order_placed", as: OrderPlaced.self, handler: "record-order") { event, context in
            try await recordOrder(event.payload, in: context.transaction)
        }

        router.on("inventory.stock_reserved", as: StockReserved.self, handler: "confirm-reservation") { event, context in
            let reserved = event.payload
            guard try await exists(order: reserved.orderID, context.transaction) else { throw orderUnknown(reserved.orderID) }
            for item in reserved.items {
                try await context.transaction.execute("""
                    INSERT INTO reservations (order_id, sku, quantity, status, warehouse_id) VALUES (?, ?, ?, 'reserved', ?)
                    ON CONFLICT (order_id, sku) DO UPDATE SET status = 'reserved', warehouse_id = excluded.warehouse_id
                    """, [.text(reserved.orderID), .text(item.sku), SQLValue(item.quantity), .text(reserved.warehouseID)])
            }
        }

        router.on("billing.payment_authorized", as: PaymentAuthorized.self, version: 2, handler: "book-payment") { event, context in
            let payment = event.payload
            guard try await exists(order: payment.orderID, context.transaction) else { throw orderUnknown(payment.orderID) }
            try await context.transaction.execute("""
                INSERT INTO order_ledger (event_id, order_id, entry, amount_minor, currency) VALUES (?, ?, 'payment_authorized', ?, ?)
                ON CONFLICT (event_id) DO UPDATE SET amount_minor = excluded.amount_minor
                """, [.text(event.eventID), .text(payment.orderID), SQLValue(payment.amountMinor), .text(payment.currency)])
            try await context.transaction.execute(
                "UPDATE orders SET status = 'paid', capture_mode = ? WHERE order_id = ?", [.text(payment.captureMode), .text(payment.orderID)])
            // A side effect outside the transaction: a replay must not send it again.
            if context.isReplay {
                context.logger.info("replay: not notifying the customer again", metadata: ["order.id": "\(payment.orderID)"])
            } else {
                try await notifier.paymentReceived(orderID: payment.orderID, amountMinor: payment.amountMinor, currency: payment.currency)
            }
        }
        return router
    }

    /// The `record-order` handler's writes: the order, and a requested reservation per line item
    /// (upserts, so a reprocess replay rebuilds instead of doubling).
    public static func recordOrder(_ order: OrderPlaced, in transaction: SQLDedupeStore.Transaction) async throws {
        try await transaction.execute(recordOrderSQL, [.text(order.orderID), .text(order.customerID), .text(order.currency), SQLValue(order.totalMinor)])
        for item in order.lineItems {
            try await transaction.execute(requestReservationSQL, [.text(order.orderID), .text(item.sku), SQLValue(item.quantity)])
        }
    }

    /// The order upsert of `record-order` (arguments: order id, customer id, currency, total).
    public static let recordOrderSQL = """
        INSERT INTO orders (order_id, customer_id, currency, total_minor, status) VALUES (?, ?, ?, ?, 'placed')
        ON CONFLICT (order_id) DO UPDATE SET customer_id = excluded.customer_id, total_minor = excluded.total_minor
        """

    /// The reservation upsert of `record-order`, one per line item (arguments: order id, sku, quantity).
    public static let requestReservationSQL = """
        INSERT INTO reservations (order_id, sku, quantity, status) VALUES (?, ?, ?, 'requested')
        ON CONFLICT (order_id, sku) DO UPDATE SET quantity = excluded.quantity
        """

    static func exists(order orderID: String, _ transaction: SQLDedupeStore.Transaction) async throws -> Bool {
        try await !transaction.query("SELECT 1 FROM orders WHERE order_id = ?", [.text(orderID)]).isEmpty
    }
}

/// Tells customers about their orders (an email in production).
public protocol CustomerNotifier: Sendable {
    func paymentReceived(orderID: String, amountMinor: Int, currency: String) async throws
}

/// Appends notifications to a file (`FULFILLMENT_OUTBOX`), or only logs them: the demo's
/// stand-in for an email gateway, so it can show that replays send nothing.
public struct OutboxNotifier: CustomerNotifier {
    public let path: String?

    public init(path: String?) {
        self.path = path
    }

    public static func fromEnvironment() -> OutboxNotifier {
        OutboxNotifier(path: ProcessInfo.processInfo.environment["FULFILLMENT_OUTBOX"])
    }

    public func paymentReceived(orderID: String, amountMinor: Int, currency: String) async throws {
        guard let path else { return }
        let line = "payment received for \(orderID): \(amountMinor / 100).\(String(format: "%02d", amountMinor % 100)) \(currency)\n"
        let descriptor = open(path, O_WRONLY | O_APPEND | O_CREAT, 0o644)
        guard descriptor >= 0 else { throw SluiceError(code: "OUTBOX_UNAVAILABLE", message: "cannot open \(path)", isRetriable: true) }
        defer { close(descriptor) }
        _ = Array(line.utf8).withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
    }
}
