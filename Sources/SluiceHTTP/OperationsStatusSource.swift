/// What the operations endpoint asks a running service, on request: nothing is pushed to it.
///
/// ``ConsumerOperationsSource`` answers for `run`'s `EventConsumer`; `replay` has its own.
public protocol OperationsStatusSource: Sendable {
    /// The document `GET /partitions` answers.
    associatedtype PartitionsDocument: Encodable & Sendable

    /// Whether the service's tasks still run (`GET /health/live` is 200 while they do).
    func isLive() async -> Bool

    /// Why the service is not ready, one line each; empty when it is (`GET /health/ready`).
    func readinessProblems() async -> [String]

    /// Each partition's progress (`GET /partitions`).
    func partitions() async -> PartitionsDocument
}
