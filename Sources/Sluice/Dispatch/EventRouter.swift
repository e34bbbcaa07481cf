/// Handlers by event type.
///
/// Each handler has a name, unique within the service: it is part of the dedupe key
/// `(consumer group, handler, event_id)`, so renaming a handler makes it see old events as new.
///
/// ```swift
/// var router = EventRouter<SQLDedupeStore.Transaction>()
/// router.on("billing.payment_authorized", as: PaymentAuthorized.self, version: 2, handler: "reserve-stock") { event, context in
///     try await context.transaction.execute(
///         "INSERT INTO reservations (order_id, amount_minor) VALUES (?, ?)",
///         [.text(event.payload.orderID), SQLValue(event.payload.amountMinor)])
/// }
/// ```
public struct EventRouter<Transaction: DedupeTransaction>: Sendable {
    /// One registered handler.
    public struct Route: Sendable {
        /// The handler's name (part of the dedupe key).
        public let name: String
        /// The event type it handles.
        public let eventType: String
        /// The newest schema version the handler accepts; older events are upcast to it.
        public let version: Int?
        /// Upcasts and decodes an envelope's payload for this handler, returning the handler bound
        /// to it. Done when the record is prepared, outside the store transaction: decoding is a
        /// function of the envelope alone, and a transaction shared by many lanes should hold the
        /// writer only for the handlers' own work.
        let binder: @Sendable (Envelope, UpcasterChain) -> @Sendable (HandlerContext<Transaction>) async throws -> Void

        func bind(_ envelope: Envelope, _ upcasters: UpcasterChain) -> Bound {
            Bound(route: self, call: binder(envelope, upcasters))
        }

        /// A handler with its record's payload decoded (or the decoding error, thrown when it is
        /// called, where the handler would have thrown it).
        struct Bound: Sendable {
            let route: Route
            let call: @Sendable (HandlerContext<Transaction>) async throws -> Void

            /// The handler's name.
            var name: String { route.name }
        }
    }

    private var routesByType: [String: [Route]] = [:]

    /// A router with no routes.
    public init() {}

    /// Registers a typed handler for `eventType`.
    ///
    /// - Parameters:
    ///   - eventType: The event type the handler handles, e.g. `billing.payment_authorized`.
    ///   - payload: The type `data` decodes to (after upcasting).
    ///   - version: The newest schema version the handler understands; events of older versions
    ///     are upcast to it by the registered upcasters. `nil`: the newest registered version.
    ///   - name: The handler's stable name (part of the dedupe key and the `sluice.handler` header).
    ///   - body: The handler. Throw a `SluiceError` with `isRetriable: false` for a failure that
    ///     retrying cannot fix: the record goes straight to the dead-letter topic. Any other error
    ///     is retried with backoff.
    public mutating func on<Payload: Decodable & Sendable>(
        _ eventType: String,
        as payload: Payload.Type,
        version: Int? = nil,
        handler name: String,
        _ body: @escaping @Sendable (Event<Payload>, HandlerContext<Transaction>) async throws -> Void
    ) {
        let route = Route(name: name, eventType: eventType, version: version) { envelope, upcasters in
            let event = Result { try upcasters.event(envelope, as: Payload.self, version: version) }
            return { context in try await body(try event.get(), context) }
        }
        routesByType[eventType, default: []].append(route)
    }

    /// The handlers of `eventType`, in registration order.
    public func routes(for eventType: String) -> [Route] {
        routesByType[eventType] ?? []
    }

    /// Every event type with at least one handler.
    public var eventTypes: [String] { routesByType.keys.sorted() }
}
