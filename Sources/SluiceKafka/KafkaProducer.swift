import Dispatch
import Foundation
import Logging
import Sluice
import Synchronization

/// A record to produce.
public struct ProducerRecord: Sendable, Hashable {
    /// The topic to write to.
    public var topic: String
    /// The partition, or `nil` to let the partitioner choose from the key.
    public var partition: Int32?
    /// The key's bytes (`nil`: a null key); the partitioner hashes it when no partition is given.
    public var key: [UInt8]?
    /// The value's bytes (`nil`: a tombstone).
    public var value: [UInt8]?
    /// Headers, in order (names may repeat).
    public var headers: [RecordHeader]
    /// Create time in milliseconds since the epoch; `nil` for now.
    public var timestampMilliseconds: Int64?

    /// A record for `topic`; with no `partition` the partitioner picks one from the key.
    public init(
        topic: String,
        partition: Int32? = nil,
        key: [UInt8]? = nil,
        value: [UInt8]?,
        headers: [RecordHeader] = [],
        timestampMilliseconds: Int64? = nil
    ) {
        self.topic = topic
        self.partition = partition
        self.key = key
        self.value = value
        self.headers = headers
        self.timestampMilliseconds = timestampMilliseconds
    }
}

/// Where the broker stored a produced record.
public struct DeliveryReport: Sendable, Hashable {
    /// Where the record was written.
    public var topicPartition: TopicPartition
    /// The offset the broker gave it.
    public var offset: Offset
    /// The record's timestamp as stored, in milliseconds since the epoch.
    public var timestampMilliseconds: Int64?
}

/// A Kafka producer, idempotent by default, whose every record's delivery result is reported.
///
/// A dedicated thread serves librdkafka's delivery reports; nothing here blocks the cooperative
/// pool. A record is only "sent" when `send(_:)` returned its ``DeliveryReport``: the broker has
/// acknowledged it (with `acks=all` when idempotent). Every failure reaches the caller: a record
/// is never dropped silently, including at ``close()``, which fails what it cannot flush.
public final class KafkaProducer: Sendable {
    /// The configuration the producer was created with.
    public let configuration: KafkaProducerConfiguration
    private let engine: KafkaProducerEngine

    /// Creates the producer and starts the thread that serves its delivery reports.
    ///
    /// - Throws: ``KafkaError`` for an unknown or invalid property, named in the error.
    public init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        self.configuration = configuration
        self.engine = try KafkaProducerEngine(configuration: configuration, logger: logger)
        engine.start()
    }

    deinit {
        engine.requestClose(completion: nil)
    }

    /// Produces a record and waits until the broker acknowledged it.
    ///
    /// If the calling task is cancelled while it waits, it stops waiting and throws
    /// ``KafkaError/Code/cancelled``; librdkafka may still deliver the record (or fail it at
    /// ``close()``), so a caller that gives up this way must treat it as possibly written.
    ///
    /// - Returns: Where the record was stored.
    /// - Throws: ``KafkaError`` when delivery failed (after librdkafka's own retries) or the
    ///   record was refused locally.
    @discardableResult
    public func send(_ record: ProducerRecord) async throws(KafkaError) -> DeliveryReport {
        let (reports, continuation) = AsyncStream.makeStream(of: Result<DeliveryReport, KafkaError>.self)
        try await engine.enqueue(record) { result in
            continuation.yield(result)
            continuation.finish()
        }
        // The delivery report always arrives: librdkafka reports every queued record, and close() fails
        // the ones it cannot deliver. Cancellation ends the wait without one.
        var result: Result<DeliveryReport, KafkaError> = .failure(
            KafkaError.cancelledWhileWaitingForDelivery("cancelled while waiting for the delivery report"))
        await withTaskCancellationHandler {
            for await report in reports { result = report }
        } onCancel: {
            continuation.finish()
        }
        return try result.get()
    }

    /// Produces records in the order given and waits until each has its delivery result.
    ///
    /// Records are queued one after another (never concurrently), so records bound for one
    /// partition are stored in the order of `records`; with ``KafkaProducerConfiguration/idempotent``
    /// (the default) librdkafka's retries keep that order too. When a record cannot be queued,
    /// it and every record after it fail with that error and are not sent, so no later record
    /// overtakes it. If the calling task is cancelled while it waits for reports, the records
    /// without one yet are returned as failed (`CLIENT_CLOSED`, "no delivery report") although
    /// librdkafka may still deliver them.
    ///
    /// - Returns: One result per record, in the order of `records`.
    public func send(_ records: [ProducerRecord]) async -> [Result<DeliveryReport, KafkaError>] {
        let (reports, continuation) = AsyncStream.makeStream(of: (Int, Result<DeliveryReport, KafkaError>).self)
        var results = [Result<DeliveryReport, KafkaError>?](repeating: nil, count: records.count)
        var queued = 0
        for (index, record) in records.enumerated() {
            do {
                try await engine.enqueue(record) { continuation.yield((index, $0)) }
                queued += 1
            } catch {
                for rest in index..<records.count { results[rest] = .failure(error) }
                break
            }
        }
        var received = 0
        if queued > 0 {
            // Every queued record gets its report: librdkafka reports each one, and close() fails
            // the ones it cannot deliver.
            for await (index, result) in reports {
                results[index] = result
                received += 1
                if received == queued { break }
            }
        }
        continuation.finish()
        return results.map { $0 ?? .failure(KafkaError.clientClosed("no delivery report")) }
    }

    /// Queues a record without waiting for its delivery; `completion` gets the delivery result on
    /// the producer's thread. Waits (without blocking a thread) while librdkafka's queue is full.
    ///
    /// - Throws: ``KafkaError`` when the record cannot be queued; `completion` is then never called.
    public func enqueue(
        _ record: ProducerRecord,
        completion: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    ) async throws(KafkaError) {
        try await engine.enqueue(record, completion: completion)
    }

    /// Waits until every queued record has its delivery result.
    public func flush(timeout: Duration = .seconds(30)) async throws(KafkaError) {
        try await engine.flush(timeout: timeout)
    }

    /// Flushes for up to ``KafkaProducerConfiguration/flushTimeout``, fails the records still
    /// outstanding (their completions get `_PURGE_QUEUE`/`_PURGE_INFLIGHT`), and stops.
    public func close() async throws(KafkaError) {
        let result: Result<Void, KafkaError> = await withCheckedContinuation { continuation in
            engine.requestClose { continuation.resume(returning: $0) }
        }
        try result.get()
    }
}

/// The machinery behind ``KafkaProducer``: the librdkafka handle and the delivery-report thread.
final class KafkaProducerEngine: Sendable {
    private struct State {
        var closeRequested = false
        var closeCompletions: [@Sendable (Result<Void, KafkaError>) -> Void] = []
        var finished: Result<Void, KafkaError>?
    }

    private let client: RDKafkaClient
    private let configuration: KafkaProducerConfiguration
    private let logger: Logger
    private let state = Mutex(State())
    private let flushQueue = DispatchQueue(label: "sluice.kafka.producer.flush")

    init(configuration: KafkaProducerConfiguration, logger: Logger) throws(KafkaError) {
        self.configuration = configuration
        self.logger = logger
        self.client = try RDKafkaClient(
            kind: .producer, properties: configuration.librdkafkaProperties, logger: logger,
            deliveryReports: true)
    }

    func start() {
        let thread = Thread { [self] in pollLoop() }
        thread.name = "sluice-kafka-producer"
        thread.start()
    }

    func enqueue(
        _ record: ProducerRecord,
        completion: @escaping @Sendable (Result<DeliveryReport, KafkaError>) -> Void
    ) async throws(KafkaError) {
        let topic = record.topic
        let deadline = ContinuousClock.now + configuration.deliveryTimeout
        while true {
            if state.withLock({ $0.closeRequested || $0.finished != nil }) {
                throw KafkaError.clientClosed("the producer is closed")
            }
            let refused = client.produce(
                topic: topic, partition: record.partition, key: record.key, value: record.value,
                headers: record.headers, timestampMilliseconds: record.timestampMilliseconds
            ) { result in
                completion(result.map {
                    DeliveryReport(
                        topicPartition: TopicPartition(topic: topic, partition: $0.partition),
                        offset: $0.offset, timestampMilliseconds: $0.timestamp)
                })
            }
            guard let refused else { return }
            // A full local queue is backpressure, not a failure: wait for deliveries to drain it.
            guard refused.code == "_QUEUE_FULL", ContinuousClock.now < deadline else { throw refused }
            do {
                try await Task.sleep(for: .milliseconds(2))
            } catch {
                throw KafkaError.cancelledWhileQueueFull("enqueue cancelled while the queue was full")
            }
        }
    }

    func flush(timeout: Duration) async throws(KafkaError) {
        let client = self.client
        let result: Result<Void, KafkaError> = await withCheckedContinuation { continuation in
            flushQueue.async {
                continuation.resume(returning: Result { () throws(KafkaError) in
                    try client.flush(timeoutMilliseconds: Int32(clamping: timeout.milliseconds))
                })
            }
        }
        try result.get()
    }

    func requestClose(completion: (@Sendable (Result<Void, KafkaError>) -> Void)?) {
        let finished: Result<Void, KafkaError>? = state.withLock { state in
            if let finished = state.finished { return finished }
            state.closeRequested = true
            if let completion { state.closeCompletions.append(completion) }
            return nil
        }
        if let finished { completion?(finished) }
    }

    private func pollLoop() {
        while !state.withLock({ $0.closeRequested }) {
            client.poll(timeoutMilliseconds: 100)
        }
        var outcome: Result<Void, KafkaError> = .success(())
        do throws(KafkaError) {
            try client.flush(timeoutMilliseconds: Int32(clamping: configuration.flushTimeout.milliseconds))
        } catch {
            let outstanding = client.outstandingCount
            logger.error("producer closed with \(outstanding) undelivered record(s); failing them", metadata: ["error": "\(error)"])
            client.purgeOutstanding()
            // Serve the purged records' delivery reports so every caller hears of its failure.
            while client.outstandingCount > 0 { client.poll(timeoutMilliseconds: 100) }
            outcome = .failure(error)
        }
        let completions = state.withLock { state in
            state.finished = outcome
            defer { state.closeCompletions.removeAll() }
            return state.closeCompletions
        }
        for completion in completions { completion(outcome) }
    }
}
