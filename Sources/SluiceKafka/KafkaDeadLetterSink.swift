import Foundation
import Sluice

/// Writes dead letters with a ``KafkaProducer`` (idempotent, `acks=all`), returning only once
/// the broker acknowledged each one.
public struct KafkaDeadLetterSink: DeadLetterSink {
    private let producer: KafkaProducer

    /// A sink writing with `producer` (keep it idempotent, as ``KafkaProducerConfiguration`` is by default).
    public init(producer: KafkaProducer) {
        self.producer = producer
    }

    public func send(_ record: DeadLetterRecord) async throws {
        try await producer.send(ProducerRecord(topic: record.topic, key: record.key, value: record.value, headers: record.headers))
    }
}
