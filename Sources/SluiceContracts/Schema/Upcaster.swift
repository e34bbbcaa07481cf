/// Turns version `N` of an event type's `data` into version `N + 1`.
///
/// Upcasters let a handler be written against the newest version only: an ``UpcasterChain``
/// applies them one step at a time and validates every step's output against its target
/// version's schema, so a faulty upcaster is caught where it goes wrong.
///
/// ```swift
/// let addCaptureMode = Upcaster(eventType: "billing.payment_authorized", fromVersion: 1) { data in
///     guard case .object(var object) = data else { return data }
///     object.members.append(("capture_mode", .string("automatic")))
///     return .object(object)
/// }
/// ```
public struct Upcaster: Sendable {
    /// The event type this upcaster applies to.
    public let eventType: String
    /// The version it reads; it writes `fromVersion + 1`.
    public let fromVersion: Int
    private let transform: @Sendable (JSONValue) throws -> JSONValue

    /// The version it writes.
    public var toVersion: Int { fromVersion + 1 }

    /// Creates an upcaster.
    ///
    /// - Parameters:
    ///   - eventType: the event type.
    ///   - fromVersion: the version it reads (≥ 1).
    ///   - transform: turns that version's `data` into the next version's. A thrown error makes
    ///     the event fail with `UPCAST_FAILED` (a ``SluiceError`` thrown here keeps its code).
    public init(
        eventType: String, fromVersion: Int, transform: @escaping @Sendable (JSONValue) throws -> JSONValue
    ) {
        self.eventType = eventType
        self.fromVersion = fromVersion
        self.transform = transform
    }

    /// Applies the upcaster.
    public func upcast(_ data: JSONValue) throws -> JSONValue { try transform(data) }
}
