import CRDKafka
import Logging
import Sluice

/// What one poll of the consumer queue returned.
struct RDKafkaPollResult {
    var records: [Record] = []
    /// Errors delivered in place of records (consumer errors are events, not failures of the poll).
    var errors: [KafkaError] = []
}

/// Reads records off the consumer queue in batches and turns them into Swift values.
///
/// Not thread-safe: one poll thread owns it. It caches topic names per topic handle, so a batch
/// does not build the same `String` for every record.
final class RDKafkaRecordReader {
    private let client: RDKafkaClient
    private let queue: OpaquePointer
    private var buffer: [UnsafeMutablePointer<rd_kafka_message_t>?]
    private var topicNames: [OpaquePointer: String] = [:]

    /// `nil` when the consumer has no group handle (``RDKafkaQueueWaker`` reports that as an error first).
    init?(client: RDKafkaClient, maxBatchSize: Int) {
        guard let queue = rd_kafka_queue_get_consumer(client.handle) else { return nil }
        self.client = client
        self.queue = queue
        self.buffer = Array(repeating: nil, count: max(1, maxBatchSize))
    }

    deinit { rd_kafka_queue_destroy(queue) }

    /// Waits up to `timeoutMilliseconds` for records, serving rebalances, errors and logs meanwhile,
    /// and returns as soon as there is one: every record already fetched, up to the batch size.
    ///
    /// `rd_kafka_consume_batch_queue` with a timeout waits until the batch is *full* or the
    /// timeout has passed, so a trickle of records would each wait up to the whole timeout (the
    /// latency benchmark saw ~50 ms added at 1,000 records/s). So the batch is taken without
    /// waiting, and only an empty queue is waited on, for its first message.
    ///
    /// - Important: Blocks. Call it on the consumer's own thread only.
    func poll(timeoutMilliseconds: Int32) -> RDKafkaPollResult {
        var result = RDKafkaPollResult()
        let count = buffer.withUnsafeMutableBufferPointer { slots -> Int in
            guard let base = slots.baseAddress else { return 0 }
            let ready = rd_kafka_consume_batch_queue(queue, 0, base, slots.count)
            guard ready == 0 else { return ready }
            // Nothing fetched yet: wait for the first message (a record, an error event), or a
            // wake-up (`rd_kafka_queue_yield`), then take what arrived with it.
            guard let first = rd_kafka_consumer_poll(client.handle, timeoutMilliseconds) else { return 0 }
            base[0] = first
            guard slots.count > 1 else { return 1 }
            return 1 + max(0, rd_kafka_consume_batch_queue(queue, 0, base + 1, slots.count - 1))
        }
        guard count > 0 else { return result }
        result.records.reserveCapacity(count)
        for index in 0..<count {
            guard let message = buffer[index] else { continue }
            defer { rd_kafka_message_destroy(message) }
            let err = message.pointee.err
            if err != RD_KAFKA_RESP_ERR_NO_ERROR {
                var error = client.error(err)
                if let payload = message.pointee.payload, message.pointee.len > 0 {
                    let text = String(decoding: UnsafeRawBufferPointer(start: payload, count: message.pointee.len), as: UTF8.self)
                    error.message = client.redactor.redact(text)
                }
                if err == RD_KAFKA_RESP_ERR__FATAL, let fatal = client.fatalError() { error = fatal }
                result.errors.append(error)
                continue
            }
            result.records.append(record(from: message))
        }
        return result
    }

    private func record(from message: UnsafeMutablePointer<rd_kafka_message_t>) -> Record {
        let raw = message.pointee
        let topic: String
        if let rkt = raw.rkt {
            if let cached = topicNames[rkt] {
                topic = cached
            } else {
                topic = String(cString: rd_kafka_topic_name(rkt))
                topicNames[rkt] = topic
            }
        } else {
            topic = ""
        }
        var timestampType = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &timestampType)
        let timestamp: RecordTimestamp? =
            switch timestampType {
            case RD_KAFKA_TIMESTAMP_CREATE_TIME: RecordTimestamp(milliseconds: milliseconds, type: .createTime)
            case RD_KAFKA_TIMESTAMP_LOG_APPEND_TIME: RecordTimestamp(milliseconds: milliseconds, type: .logAppendTime)
            default: nil
            }
        let key = raw.key.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.key_len)) }
        let value = raw.payload.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: raw.len)) }
        return Record(
            topic: topic, partition: raw.partition, offset: Offset(raw.offset), timestamp: timestamp,
            key: key, value: value, headers: headers(of: message))
    }

    private func headers(of message: UnsafeMutablePointer<rd_kafka_message_t>) -> [RecordHeader] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else {
            return []
        }
        var result: [RecordHeader] = []
        result.reserveCapacity(rd_kafka_header_cnt(headers))
        var index = 0
        var name: UnsafePointer<CChar>?
        var value: UnsafeRawPointer?
        var size = 0
        while rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR {
            let bytes = value.map { [UInt8](UnsafeRawBufferPointer(start: $0, count: size)) }
            result.append(RecordHeader(name: name.map { String(cString: $0) } ?? "", value: bytes))
            index += 1
        }
        return result
    }
}

extension RDKafkaClient {
    func subscribe(_ topics: [String]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(capacity: topics.count)
        for topic in topics { list.add(TopicPartition(topic: topic, partition: RD_KAFKA_PARTITION_UA), offset: .invalid) }
        let code = rd_kafka_subscribe(handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "subscribe to \(topics)") }
    }

    /// Replaces the assignment (group-less consumers, or after an eager revoke).
    func assign(_ offsets: [TopicPartition: Offset]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(offsets)
        let code = rd_kafka_assign(handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "assign") }
    }

    func assignment() throws(KafkaError) -> [TopicPartition] {
        var list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let code = rd_kafka_assignment(handle, &list)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let list else { throw error(code, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(list) }
        return RDKafkaTopicPartitionList.topicPartitions(in: list)
    }

    func pause(_ partitions: [TopicPartition]) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = RDKafkaTopicPartitionList(partitions)
        let code = rd_kafka_pause_partitions(handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "pause") }
    }

    func resume(_ partitions: [TopicPartition]) throws(KafkaError) {
        guard !partitions.isEmpty else { return }
        let list = RDKafkaTopicPartitionList(partitions)
        let code = rd_kafka_resume_partitions(handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "resume") }
    }

    /// - Important: Blocks up to `timeoutMilliseconds`.
    func seek(_ offsets: [TopicPartition: Offset], timeoutMilliseconds: Int32) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(offsets)
        if let failure = rd_kafka_seek_partitions(handle, list.pointer, timeoutMilliseconds) {
            throw consume(failure, context: "seek")
        }
        let partitionErrors = list.partitionErrors()
        guard partitionErrors.isEmpty else {
            var failure = error(rd_kafka_resp_err_t(rawValue: partitionErrors[0].number), context: "seek")
            failure.partitionErrors = partitionErrors
            throw failure
        }
    }

    /// Commits explicit offsets and reports the broker's answer per partition.
    ///
    /// - Important: Blocks until the broker answered.
    func commitSync(_ offsets: [TopicPartition: Offset]) throws(KafkaError) {
        let list = RDKafkaTopicPartitionList(offsets)
        let code = rd_kafka_commit(handle, list.pointer, 0)
        let partitionErrors = list.partitionErrors()
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, partitionErrors.isEmpty else {
            var failure = error(code == RD_KAFKA_RESP_ERR_NO_ERROR
                ? rd_kafka_resp_err_t(rawValue: partitionErrors[0].number) : code, context: "commit")
            failure.partitionErrors = partitionErrors
            throw failure
        }
    }

    /// Starts a commit and returns at once; `completion` runs on the thread that polls the
    /// consumer queue, with the broker's answer.
    func commitAsync(
        _ offsets: [TopicPartition: Offset],
        completion: @escaping @Sendable (Result<[TopicPartition: Offset], KafkaError>) -> Void
    ) {
        let list = RDKafkaTopicPartitionList(offsets)
        let box = Unmanaged.passRetained(RDKafkaCommitCompletion(redactor: redactor, completion: completion))
        let queue = rd_kafka_queue_get_consumer(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let code = rd_kafka_commit_queue(handle, list.pointer, queue, rdKafkaCommitCallback, box.toOpaque())
        if code == RD_KAFKA_RESP_ERR__UNKNOWN_GROUP {
            // Refused before anything was queued, so the callback will never run: report it here.
            box.release()
            completion(.failure(error(code, context: "commit")))
        }
    }

    /// The group's committed offsets (``Offset/invalid`` where nothing was committed).
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    func committed(_ partitions: [TopicPartition], timeoutMilliseconds: Int32) throws(KafkaError) -> [TopicPartition: Offset] {
        let list = RDKafkaTopicPartitionList(partitions)
        let code = rd_kafka_committed(handle, list.pointer, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "committed offsets") }
        return list.offsets
    }

    /// The next offset the application will be given per partition.
    func position(_ partitions: [TopicPartition]) throws(KafkaError) -> [TopicPartition: Offset] {
        let list = RDKafkaTopicPartitionList(partitions)
        let code = rd_kafka_position(handle, list.pointer)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "position") }
        return list.offsets
    }

    /// - Important: Blocks up to `timeoutMilliseconds`.
    func watermarks(_ partition: TopicPartition, timeoutMilliseconds: Int32) throws(KafkaError) -> (low: Offset, high: Offset) {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_query_watermark_offsets(
            handle, partition.topic, partition.partition, &low, &high, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "watermarks of \(partition)") }
        return (Offset(low), Offset(high))
    }

    /// The watermarks the last fetch response reported, without asking the broker; `nil` before
    /// the first fetch of the partition.
    func cachedWatermarks(_ partition: TopicPartition) -> (low: Offset, high: Offset)? {
        var low: Int64 = -1
        var high: Int64 = -1
        let code = rd_kafka_get_watermark_offsets(handle, partition.topic, partition.partition, &low, &high)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, high >= 0 else { return nil }
        return (Offset(low), Offset(high))
    }

    /// For each partition the earliest offset whose timestamp is ≥ the given one (``Offset/end``
    /// when there is none).
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    func offsets(forTimestamps timestamps: [TopicPartition: Int64], timeoutMilliseconds: Int32) throws(KafkaError) -> [TopicPartition: Offset] {
        let list = RDKafkaTopicPartitionList(timestamps.mapValues { Offset($0) })
        let code = rd_kafka_offsets_for_times(handle, list.pointer, timeoutMilliseconds)
        let partitionErrors = list.partitionErrors()
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, partitionErrors.isEmpty else {
            var failure = error(code == RD_KAFKA_RESP_ERR_NO_ERROR
                ? rd_kafka_resp_err_t(rawValue: partitionErrors[0].number) : code, context: "offsets for times")
            failure.partitionErrors = partitionErrors
            throw failure
        }
        return list.offsets
    }

    /// Leaves the group: serves the final revoke (the rebalance callback runs on this thread) and
    /// stops fetching.
    ///
    /// - Important: Blocks until the group was left.
    func closeConsumer() throws(KafkaError) {
        let code = rd_kafka_consumer_close(handle)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "close") }
    }

    /// The rebalance protocol in force: `COOPERATIVE`, `EAGER` or `NONE`.
    var rebalanceProtocol: String { String(cString: rd_kafka_rebalance_protocol(handle)) }
}

/// The Swift side of one asynchronous commit, retained until librdkafka's callback ran.
final class RDKafkaCommitCompletion: Sendable {
    let redactor: SecretRedactor
    let completion: @Sendable (Result<[TopicPartition: Offset], KafkaError>) -> Void

    init(redactor: SecretRedactor, completion: @escaping @Sendable (Result<[TopicPartition: Offset], KafkaError>) -> Void) {
        self.redactor = redactor
        self.completion = completion
    }
}

private let rdKafkaCommitCallback: @convention(c) (OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, code, list, opaque in
    guard let opaque else { return }
    let box = Unmanaged<RDKafkaCommitCompletion>.fromOpaque(opaque).takeRetainedValue()
    var offsets: [TopicPartition: Offset] = [:]
    var partitionErrors: [KafkaError.PartitionError] = []
    if let list {
        for element in UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)) {
            let partition = TopicPartition(topic: String(cString: element.topic), partition: element.partition)
            offsets[partition] = Offset(element.offset)
            if element.err != RD_KAFKA_RESP_ERR_NO_ERROR {
                partitionErrors.append(KafkaError.PartitionError(
                    topic: partition.topic, partition: partition.partition,
                    code: KafkaError.Code(rawValue: String(cString: rd_kafka_err2name(element.err))),
                    number: element.err.rawValue))
            }
        }
    }
    if code == RD_KAFKA_RESP_ERR_NO_ERROR && partitionErrors.isEmpty {
        box.completion(.success(offsets))
    } else {
        let cause = code != RD_KAFKA_RESP_ERR_NO_ERROR ? code : rd_kafka_resp_err_t(rawValue: partitionErrors[0].number)
        var failure = RDKafkaClient.error(cause, context: "commit", redactor: box.redactor)
        failure.partitionErrors = partitionErrors
        box.completion(.failure(failure))
    }
}

/// Interrupts a blocking poll of the consumer queue from another thread.
///
/// `@unchecked Sendable`: holds a queue reference of its own (released in `deinit`), and
/// `rd_kafka_queue_yield` is thread-safe.
final class RDKafkaQueueWaker: @unchecked Sendable {
    /// Kept so the handle outlives the queue reference: destroying a handle with queues still
    /// referenced blocks forever.
    private let client: RDKafkaClient
    private let queue: OpaquePointer

    init(client: RDKafkaClient) throws(KafkaError) {
        guard let queue = rd_kafka_queue_get_consumer(client.handle) else {
            throw KafkaError.unknownGroup("the consumer has no group handle (is group.id set to an empty string?)")
        }
        self.client = client
        self.queue = queue
    }

    deinit { rd_kafka_queue_destroy(queue) }

    func wake() { rd_kafka_queue_yield(queue) }
}

/// Finds offsets by timestamp by reading records, for brokers without a time index.
///
/// librdkafka's mock cluster (2.0.2) answers every ListOffsets-by-timestamp with "no such
/// offset". A real broker only says that when no record is that recent, so when the broker's
/// answer is "end" but the partition's last record is at or after the time, the answer cannot
/// be right and the partition is scanned instead, with Kafka's semantics: the earliest offset
/// whose timestamp is at or after the time.
///
/// Each call uses a short-lived group-less consumer of its own, so the caller's assignment and
/// position are untouched.
struct RDKafkaTimestampScanner {
    let properties: [String: String]
    let logger: Logger
    let timeoutMilliseconds: Int32

    /// The first offset in `[from, high)` whose timestamp is ≥ `timestamp`, or `nil`.
    ///
    /// - Important: Blocks while it reads.
    func firstOffset(in partition: TopicPartition, from: Offset, high: Offset, atOrAfter timestamp: Int64) throws(KafkaError) -> Offset? {
        guard from < high else { return nil }
        var scanProperties = properties
        scanProperties["group.id"] = "sluice-timestamp-scan"
        scanProperties["enable.auto.commit"] = "false"
        scanProperties.removeValue(forKey: "group.instance.id")
        let client = try RDKafkaClient(kind: .consumer, properties: scanProperties, logger: logger)
        try client.assign([partition: from])
        guard let reader = RDKafkaRecordReader(client: client, maxBatchSize: 500) else { return nil }
        defer {
            do {
                try client.closeConsumer()
            } catch {
                logger.debug("closing the timestamp scanner failed", metadata: ["error": "\(error)"])
            }
        }
        let deadline = ContinuousClock.now + .milliseconds(Int64(timeoutMilliseconds))
        while ContinuousClock.now < deadline {
            let result = reader.poll(timeoutMilliseconds: 100)
            if let fatal = result.errors.first(where: \.isFatal) { throw fatal }
            for record in result.records where record.topicPartition == partition {
                if let recordTime = record.timestamp?.milliseconds, recordTime >= timestamp { return record.offset }
                if record.offset.next >= high { return nil }
            }
        }
        throw KafkaError.timedOut("scanning \(partition) for timestamp \(timestamp) timed out")
    }
}
