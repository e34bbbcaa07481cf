import CRDKafka
import Sluice

/// Where a produced record landed.
struct RDKafkaDelivery: Sendable {
    var partition: Int32
    var offset: Offset
    var timestamp: Int64?
}

/// The Swift side of one produced record, retained until its delivery report ran.
final class RDKafkaDeliveryCompletion: Sendable {
    let redactor: SecretRedactor
    let completion: @Sendable (Result<RDKafkaDelivery, KafkaError>) -> Void

    init(redactor: SecretRedactor, completion: @escaping @Sendable (Result<RDKafkaDelivery, KafkaError>) -> Void) {
        self.redactor = redactor
        self.completion = completion
    }
}

extension RDKafkaClient {
    /// Hands a record to librdkafka; `completion` runs with its delivery report on the thread
    /// that polls the producer.
    ///
    /// - Returns: `nil` when the record was queued; the error when it was not (then `completion`
    ///   is never called). `_QUEUE_FULL` means the producer's queue is full: poll and try again.
    func produce(
        topic: String,
        partition: Int32?,
        key: [UInt8]?,
        value: [UInt8]?,
        headers: [RecordHeader],
        timestampMilliseconds: Int64?,
        completion: @escaping @Sendable (Result<RDKafkaDelivery, KafkaError>) -> Void
    ) -> KafkaError? {
        var cHeaders: OpaquePointer?
        if !headers.isEmpty {
            cHeaders = rd_kafka_headers_new(headers.count)
            for header in headers {
                if let value = header.value {
                    value.withUnsafeBytes { bytes in
                        _ = rd_kafka_header_add(cHeaders, header.name, -1, bytes.baseAddress, bytes.count)
                    }
                } else {
                    rd_kafka_header_add(cHeaders, header.name, -1, nil, 0)
                }
            }
        }
        let box = Unmanaged.passRetained(RDKafkaDeliveryCompletion(redactor: redactor, completion: completion))
        let code = withOptionalBytes(key) { keyPointer, keyCount in
            withOptionalBytes(value) { valuePointer, valueCount in
                sluice_rd_kafka_produce(
                    handle, topic, partition ?? RD_KAFKA_PARTITION_UA,
                    keyPointer, keyCount, valuePointer, valueCount,
                    cHeaders, timestampMilliseconds ?? 0, box.toOpaque())
            }
        }
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
            box.release()
            if let cHeaders { rd_kafka_headers_destroy(cHeaders) }
            return error(code, context: "produce to \(topic)")
        }
        return nil
    }

    /// Serves delivery reports and other callbacks.
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    @discardableResult
    func poll(timeoutMilliseconds: Int32) -> Int32 {
        rd_kafka_poll(handle, timeoutMilliseconds)
    }

    /// Waits for every queued record's delivery report.
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    func flush(timeoutMilliseconds: Int32) throws(KafkaError) {
        let code = rd_kafka_flush(handle, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR else { throw error(code, context: "flush") }
    }

    /// Fails every record still queued or in flight; their delivery reports arrive with
    /// `_PURGE_QUEUE` / `_PURGE_INFLIGHT` at the next poll.
    func purgeOutstanding() {
        rd_kafka_purge(handle, RD_KAFKA_PURGE_F_QUEUE | RD_KAFKA_PURGE_F_INFLIGHT)
    }

    /// Records queued or in flight, delivery reports not yet served included.
    var outstandingCount: Int32 { rd_kafka_outq_len(handle) }
}

private func withOptionalBytes<R>(_ bytes: [UInt8]?, _ body: (UnsafeRawPointer?, Int) -> R) -> R {
    guard let bytes else { return body(nil, 0) }
    return bytes.withUnsafeBytes { buffer in
        // An empty array has no base address; Kafka distinguishes an empty value from a null one.
        withUnsafePointer(to: 0 as UInt8) { empty in
            body(buffer.baseAddress ?? UnsafeRawPointer(empty), buffer.count)
        }
    }
}

let rdKafkaDeliveryReportCallback: @convention(c) (OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?) -> Void = {
    _, message, _ in
    guard let message, let opaque = sluice_rd_kafka_message_opaque(message) else { return }
    let box = Unmanaged<RDKafkaDeliveryCompletion>.fromOpaque(opaque).takeRetainedValue()
    let raw = message.pointee
    if raw.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let timestamp = rd_kafka_message_timestamp(message, &type)
        box.completion(.success(RDKafkaDelivery(
            partition: raw.partition, offset: Offset(raw.offset),
            timestamp: type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE ? nil : timestamp)))
    } else {
        let topic = raw.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
        box.completion(.failure(RDKafkaClient.error(
            raw.err, context: "delivery to \(topic)[\(raw.partition)]", redactor: box.redactor)))
    }
}
