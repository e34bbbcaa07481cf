import Foundation
import Logging
import ServiceLifecycle

/// Deletes processed-event records older than a horizon, in the background.
///
/// A processed-event record is what makes a redelivered event a duplicate. Once it is pruned, a
/// redelivery of that event would run its handler again, so the horizon must outlast every way
/// the event can come back:
///
/// - at least the topic's retention (`retention.ms`, 7 days by default in Kafka): a consumer
///   reset to the earliest offset sees everything Kafka still holds;
/// - plus the longest `respect` replay you would run (a replay from a timestamp older than the
///   horizon re-applies the events whose records are gone);
/// - plus the time a dead letter may wait before it is re-driven.
///
/// The default, 30 days, covers Kafka's default retention four times over. Disk cost is one
/// row per (group, handler, event): about 150 bytes, so ~4 GB per 1,000 events/s kept 30 days.
public struct ProcessedEventRetention: Sendable, Hashable {
    /// How long processed-event records are kept. Default: 30 days.
    public var horizon: Duration
    /// How often expired records are pruned. Default: 10 minutes.
    public var interval: Duration

    /// A retention: records older than `horizon` are pruned every `interval`.
    public init(horizon: Duration = .seconds(30 * 24 * 3_600), interval: Duration = .seconds(600)) {
        self.horizon = horizon
        self.interval = interval
    }

    /// The oldest processing time kept at `now`.
    public func cutoff(at now: Date) -> Date {
        let seconds = Double(horizon.components.seconds) + Double(horizon.components.attoseconds) / 1e18
        return now.addingTimeInterval(-seconds)
    }
}

/// Runs ``ProcessedEventRetention`` against a store until cancelled or shut down gracefully.
///
/// `EventConsumer` (in SluiceKafka) runs one beside its lanes; run your own when several
/// services share one store and only one of them should prune.
public struct ProcessedEventPruner<Store: DedupeStore>: Service {
    private let store: Store
    private let retention: ProcessedEventRetention
    private let logger: Logger
    private let clock: @Sendable () -> Date

    /// A pruner of `store` by `retention`; `clock` is the time the horizon counts back from (tests set it).
    public init(
        store: Store, retention: ProcessedEventRetention, logger: Logger, clock: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.store = store
        self.retention = retention
        self.logger = logger
        self.clock = clock
    }

    /// Prunes once now: returns how many records expired.
    @discardableResult
    public func pruneOnce() async throws -> Int {
        let cutoff = retention.cutoff(at: clock())
        let pruned = try await store.pruneProcessedEvents(olderThan: cutoff)
        if pruned > 0 {
            logger.info("pruned expired processed-event records", metadata: ["pruned": "\(pruned)", "cutoff": "\(cutoff)"])
        }
        return pruned
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    try await pruneOnce()
                } catch is CancellationError {
                    return
                } catch {
                    // Pruning is housekeeping: a failure is retried at the next interval, and
                    // never stops the consumer.
                    logger.warning("pruning processed-event records failed", metadata: ["error": "\(error)"])
                }
                do {
                    try await Task.sleep(for: retention.interval)
                } catch {
                    return
                }
            }
        }
    }
}
