import Dispatch
import Foundation
import Logging
import Sluice
import Synchronization

/// The machinery behind ``KafkaConsumer``: a dedicated poll thread, a bounded hand-over buffer
/// and a serial control queue.
///
/// Everything that changes what is delivered (subscribe, assign, pause, resume, seek, rebalances)
/// runs on the poll thread, between polls, so it can never interleave with a half-delivered batch.
/// Requests from other threads are queued as commands and the poll is woken to run them.
final class KafkaConsumerEngine: Sendable {
    enum Command: Sendable {
        case subscribe([String])
        case assign([TopicPartition: Offset])
        case pause([TopicPartition])
        case resume([TopicPartition])
        case seek([TopicPartition: Offset])
        /// The positions of those partitions that have nothing buffered or held (see ``drainedPositions(_:)``).
        case drainedPositions([TopicPartition], reply: @Sendable ([TopicPartition: Offset]) -> Void)
    }

    private struct PendingCommand: Sendable {
        var command: Command
        var completion: @Sendable (Result<Void, KafkaError>) -> Void
    }

    private struct State: Sendable {
        /// Batches fetched and not yet taken.
        var batches: [[Record]] = []
        /// Records in `batches` and `held`: what the buffer bound applies to.
        var bufferedRecords = 0
        /// Records of user-paused partitions, held back until they are resumed.
        var held: [TopicPartition: [Record]] = [:]
        var waiter: CheckedContinuation<[Record]?, any Error>?
        var assigned: Set<TopicPartition> = []
        var userPaused: Set<TopicPartition> = []
        /// Whether the consumer paused its whole assignment because the buffer is full.
        var flowPaused = false
        var assignmentChanged = false
        var commands: [PendingCommand] = []
        var closeRequested = false
        var closeCompletions: [@Sendable (Result<Void, KafkaError>) -> Void] = []
        /// Set once the poll thread has stopped.
        var finished: Result<Void, KafkaError>?
    }

    let client: RDKafkaClient
    private let configuration: KafkaConsumerConfiguration
    private let listener: (any KafkaRebalanceListener)?
    let logger: Logger
    private let state = Mutex(State())
    private let waker: RDKafkaQueueWaker
    /// Wakes the poll thread while it waits for a rebalance listener.
    private let wakeSignal = DispatchSemaphore(value: 0)
    /// Serializes blocking control calls (commits in order, offset queries) off the cooperative pool.
    private let controlQueue = DispatchQueue(label: "sluice.kafka.consumer.control")

    init(
        configuration: KafkaConsumerConfiguration,
        listener: (any KafkaRebalanceListener)?,
        logger: Logger
    ) throws(KafkaError) {
        let relay = RebalanceRelay()
        self.configuration = configuration
        self.listener = listener
        var logger = logger
        if let group = configuration.groupID { logger[metadataKey: "kafka.group"] = "\(group)" }
        self.logger = logger
        self.client = try RDKafkaClient(
            kind: .consumer, properties: configuration.librdkafkaProperties, logger: logger,
            onRebalance: { event in relay.handle(event) })
        self.waker = try RDKafkaQueueWaker(client: client)
        relay.engine.withLock { $0.value = self }
    }

    func start() {
        let thread = Thread { [self] in pollLoop() }
        thread.name = "sluice-kafka-consumer"
        thread.start()
    }

    func requireGroup() throws(KafkaError) {
        guard configuration.groupID != nil else {
            throw KafkaError.unknownGroup("this consumer has no groupID, so it has nothing to commit to")
        }
    }

    // MARK: Requests from other threads

    func perform(_ command: Command) async throws(KafkaError) {
        let result: Result<Void, KafkaError> = await withCheckedContinuation { continuation in
            let accepted = state.withLock { state in
                guard state.finished == nil, !state.closeRequested else { return false }
                state.commands.append(PendingCommand(command: command) { continuation.resume(returning: $0) })
                return true
            }
            if accepted {
                wake()
            } else {
                continuation.resume(returning: .failure(Self.closedError))
            }
        }
        try result.get()
    }

    func onControlQueue<T: Sendable>(
        _ body: @escaping @Sendable (RDKafkaClient) throws(KafkaError) -> T
    ) async throws(KafkaError) -> T {
        let client = self.client
        let result: Result<T, KafkaError> = await withCheckedContinuation { continuation in
            controlQueue.async {
                continuation.resume(returning: Result { () throws(KafkaError) -> T in try body(client) })
            }
        }
        return try result.get()
    }

    func requestClose(completion: (@Sendable (Result<Void, KafkaError>) -> Void)?) {
        let finished: Result<Void, KafkaError>? = state.withLock { state in
            if let finished = state.finished { return finished }
            state.closeRequested = true
            if let completion { state.closeCompletions.append(completion) }
            return nil
        }
        if let finished {
            completion?(finished)
        } else {
            wake()
        }
    }

    func nextBatch() async throws -> [Record]? {
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<[Record]?, any Error>) in
                enum Outcome { case batch([Record], wakePoller: Bool), end, failure(KafkaError), wait }
                let outcome: Outcome = state.withLock { state in
                    if !state.batches.isEmpty {
                        let batch = state.batches.removeFirst()
                        state.bufferedRecords -= batch.count
                        let wakePoller = state.flowPaused && state.bufferedRecords <= configuration.maxBufferedRecords / 2
                        return .batch(batch, wakePoller: wakePoller)
                    }
                    switch state.finished {
                    case .failure(let error): return .failure(error)
                    case .success: return .end
                    case nil: break
                    }
                    if Task.isCancelled { return .end }
                    if state.waiter != nil { return .failure(Self.concurrentIterationError) }
                    state.waiter = continuation
                    return .wait
                }
                switch outcome {
                case .batch(let batch, let wakePoller):
                    if wakePoller { waker.wake() }
                    continuation.resume(returning: batch)
                case .end: continuation.resume(returning: nil)
                case .failure(let error): continuation.resume(throwing: error)
                case .wait: break
                }
            }
        } onCancel: {
            state.withLock { state in
                defer { state.waiter = nil }
                return state.waiter
            }?.resume(returning: nil)
        }
    }

    private func wake() {
        waker.wake()
        wakeSignal.signal()
    }

    private static let concurrentIterationError = KafkaError.conflict(
        "KafkaConsumer.batches is already being iterated by another task; iterate it from one task only")

    private static let closedError = KafkaError.clientClosed("the consumer is closed")

    // MARK: The poll thread

    private func pollLoop() {
        guard let reader = RDKafkaRecordReader(client: client, maxBatchSize: configuration.maxBatchSize) else {
            finish(.failure(KafkaError.unknownGroup("the consumer has no consumer queue")))
            return
        }
        let timeout = Int32(clamping: configuration.pollTimeout.milliseconds)
        var fatal: KafkaError?
        polling: while true {
            runPendingCommands()
            if state.withLock({ $0.closeRequested }) { break }
            updateFlowControl()
            let result = reader.poll(timeoutMilliseconds: timeout)
            for error in result.errors {
                if error.isFatal {
                    logger.critical("consumer hit a fatal error", metadata: ["kafka.error.code": "\(error.code)", "error": "\(error.message)"])
                    fatal = error
                    break polling
                }
                logger.warning("consumer error", metadata: ["kafka.error.code": "\(error.code)", "error": "\(error.message)"])
            }
            if !result.records.isEmpty { deliver(result.records) }
        }
        let outcome: Result<Void, KafkaError>
        if let fatal {
            outcome = .failure(fatal)
        } else {
            // Serves the final revocation on this thread, so the listener can still commit.
            outcome = Result { () throws(KafkaError) in try client.closeConsumer() }
        }
        finish(outcome)
    }

    private func finish(_ outcome: Result<Void, KafkaError>) {
        let (waiter, completions, commands) = state.withLock { state in
            state.finished = outcome
            state.batches.removeAll()
            state.held.removeAll()
            state.bufferedRecords = 0
            defer {
                state.waiter = nil
                state.closeCompletions.removeAll()
                state.commands.removeAll()
            }
            return (state.waiter, state.closeCompletions, state.commands)
        }
        switch outcome {
        case .success: waiter?.resume(returning: nil)
        case .failure(let error): waiter?.resume(throwing: error)
        }
        for command in commands { command.completion(.failure(Self.closedError)) }
        for completion in completions { completion(outcome) }
    }

    private func deliver(_ records: [Record]) {
        let waiter: CheckedContinuation<[Record]?, any Error>?
        var batch = records
        waiter = state.withLock { state in
            if !state.userPaused.isEmpty {
                // Fetched before the pause took effect: hold them back, in order.
                batch = records.filter { record in
                    let partition = record.topicPartition
                    guard state.userPaused.contains(partition) else { return true }
                    state.held[partition, default: []].append(record)
                    state.bufferedRecords += 1
                    return false
                }
                if batch.isEmpty { return nil }
            }
            if let waiter = state.waiter {
                state.waiter = nil
                return waiter
            }
            state.batches.append(batch)
            state.bufferedRecords += batch.count
            if !state.flowPaused && state.bufferedRecords >= configuration.maxBufferedRecords {
                state.flowPaused = true
                pauseForFlowControl(&state)
            }
            return nil
        }
        waiter?.resume(returning: batch)
    }

    private func pauseForFlowControl(_ state: inout State) {
        let partitions = Array(state.assigned.subtracting(state.userPaused))
        do {
            try client.pause(partitions)
        } catch {
            logger.warning("pausing for flow control failed", metadata: ["error": "\(error)"])
        }
    }

    private func updateFlowControl() {
        state.withLock { state in
            defer { state.assignmentChanged = false }
            guard state.flowPaused else { return }
            if state.bufferedRecords <= configuration.maxBufferedRecords / 2 {
                state.flowPaused = false
                do {
                    try client.resume(Array(state.assigned.subtracting(state.userPaused)))
                } catch {
                    logger.warning("resuming after flow control failed", metadata: ["error": "\(error)"])
                }
            } else if state.assignmentChanged {
                pauseForFlowControl(&state)
            }
        }
    }

    private func runPendingCommands() {
        let pending = state.withLock { state in
            defer { state.commands.removeAll() }
            return state.commands
        }
        for command in pending {
            command.completion(Result { () throws(KafkaError) in try execute(command.command) })
        }
    }

    private func execute(_ command: Command) throws(KafkaError) {
        switch command {
        case .subscribe(let topics):
            try client.subscribe(topics)
        case .assign(let offsets):
            try client.assign(offsets)
            state.withLock { state in
                let partitions = Set(offsets.keys)
                dropBuffered(&state) { !partitions.contains($0) }
                state.assigned = partitions
                state.userPaused.formIntersection(partitions)
                state.assignmentChanged = true
            }
        case .pause(let partitions):
            try state.withLock { state throws(KafkaError) in
                let paused = Set(partitions)
                state.userPaused.formUnion(paused)
                // Move what is buffered for these partitions aside, keeping offset order.
                var remaining: [[Record]] = []
                for batch in state.batches {
                    var kept: [Record] = []
                    kept.reserveCapacity(batch.count)
                    for record in batch {
                        if paused.contains(record.topicPartition) {
                            state.held[record.topicPartition, default: []].append(record)
                        } else {
                            kept.append(record)
                        }
                    }
                    if !kept.isEmpty { remaining.append(kept) }
                }
                state.batches = remaining
                try client.pause(partitions)
            }
        case .resume(let partitions):
            let waiterAndBatch: (CheckedContinuation<[Record]?, any Error>, [Record])? = try state.withLock { state throws(KafkaError) in
                state.userPaused.subtract(partitions)
                var released: [Record] = []
                for partition in partitions {
                    if let records = state.held.removeValue(forKey: partition) { released += records }
                }
                if !state.flowPaused { try client.resume(partitions) }
                guard !released.isEmpty else { return nil }
                // Held records are older than anything fetched after the resume: they go first.
                if let waiter = state.waiter {
                    state.waiter = nil
                    state.bufferedRecords -= released.count
                    return (waiter, released)
                }
                state.batches.insert(released, at: 0)
                return nil
            }
            if let (waiter, batch) = waiterAndBatch { waiter.resume(returning: batch) }
        case .seek(let offsets):
            state.withLock { state in
                let partitions = Set(offsets.keys)
                dropBuffered(&state) { partitions.contains($0) }
            }
            try client.seek(offsets, timeoutMilliseconds: 10_000)
        case .drainedPositions(let partitions, let reply):
            // Between polls, every record librdkafka handed over (which is what moved the position)
            // is in the buffer or already taken; a partition with nothing buffered or held has had
            // every record below its position taken through `nextBatch()`.
            let positions = try client.position(partitions)
            let buffered: Set<TopicPartition> = state.withLock { state in
                var buffered = Set(state.held.keys)
                for batch in state.batches {
                    for record in batch { buffered.insert(record.topicPartition) }
                }
                return buffered
            }
            reply(positions.filter { !buffered.contains($0.key) })
        }
    }

    /// Drops buffered and held records of the partitions `matching` selects.
    private func dropBuffered(_ state: inout State, matching: (TopicPartition) -> Bool) {
        var dropped = 0
        state.batches = state.batches.compactMap { batch in
            let kept = batch.filter { !matching($0.topicPartition) }
            dropped += batch.count - kept.count
            return kept.isEmpty ? nil : kept
        }
        for partition in state.held.keys where matching(partition) {
            dropped += state.held.removeValue(forKey: partition)?.count ?? 0
        }
        state.bufferedRecords -= dropped
    }

    // MARK: Rebalances (on the poll thread, inside librdkafka's callback)

    fileprivate func handleRebalance(_ event: RDKafkaRebalanceEvent) -> [TopicPartition: Offset] {
        switch event {
        case .assigned(let partitions):
            logger.info("partitions assigned", metadata: ["kafka.partitions": "\(partitions.sorted())"])
            state.withLock { state in
                state.assigned.formUnion(partitions)
                state.assignmentChanged = true
            }
            guard let listener else { return [:] }
            return waitServingCommands { await listener.partitionsAssigned(partitions) }
        case .revoked(let partitions, let lost):
            logger.info("partitions revoked", metadata: ["kafka.partitions": "\(partitions.sorted())", "kafka.lost": "\(lost)"])
            state.withLock { state in
                let revoked = Set(partitions)
                // Not yet taken, so not yet handled: the next owner reads them from the commit.
                dropBuffered(&state) { revoked.contains($0) }
                state.assigned.subtract(revoked)
                state.userPaused.subtract(revoked)
            }
            if let listener {
                waitServingCommands { await listener.partitionsRevoked(partitions, lost: lost) }
            }
            return [:]
        }
    }

    /// Runs `body` on the cooperative pool and blocks this (dedicated) thread until it is done,
    /// executing queued commands meanwhile so the listener may pause, resume or seek.
    @discardableResult
    private func waitServingCommands<T: Sendable>(_ body: @escaping @Sendable () async -> T) -> T {
        let result = Mutex<T?>(nil)
        let signal = wakeSignal
        Task.detached {
            let value = await body()
            result.withLock { $0 = value }
            signal.signal()
        }
        while true {
            if let value = result.withLock({ $0 }) { return value }
            _ = wakeSignal.wait(timeout: .now() + .milliseconds(50))
            runPendingCommands()
        }
    }
}

/// Lets librdkafka's rebalance callback, created before the engine exists, reach it.
private final class RebalanceRelay: Sendable {
    struct WeakEngine: Sendable { weak var value: KafkaConsumerEngine? }
    let engine = Mutex(WeakEngine())

    func handle(_ event: RDKafkaRebalanceEvent) -> [TopicPartition: Offset] {
        guard let engine = engine.withLock({ $0.value }) else { return [:] }
        return engine.handleRebalance(event)
    }
}
