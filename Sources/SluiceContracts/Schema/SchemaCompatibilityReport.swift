/// The outcome of comparing every version of every event type with the version before it.
public struct SchemaCompatibilityReport: Sendable, Hashable {
    /// One compared pair of versions.
    public struct Comparison: Sendable, Hashable {
        /// The event type.
        public var eventType: String
        /// The older version.
        public var fromVersion: Int
        /// The newer version.
        public var toVersion: Int
    }

    /// Every pair compared, in event-type then version order.
    public var comparisons: [Comparison]
    /// Every change found, in the same order.
    public var changes: [SchemaChange]

    /// Creates a report.
    public init(comparisons: [Comparison] = [], changes: [SchemaChange] = []) {
        self.comparisons = comparisons
        self.changes = changes
    }

    /// The worst verdict of any change; `.pass` when there are none.
    public var verdict: CompatibilityVerdict { changes.map(\.verdict).max() ?? .pass }

    /// Whether any change is breaking: the gate fails.
    public var hasBreakingChanges: Bool { changes.contains { $0.verdict == .breaking } }

    /// The changes of one compared pair.
    public func changes(of comparison: Comparison) -> [SchemaChange] {
        changes.filter {
            $0.eventType == comparison.eventType && $0.fromVersion == comparison.fromVersion
                && $0.toVersion == comparison.toVersion
        }
    }
}
