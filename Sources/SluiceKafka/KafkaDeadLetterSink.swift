import Foundation
import Sluice

/// Writes dead letters with a ``KafkaProducer`` (idempotent, `acks=all`), returning only once
/// the broker acknowledged each one.
///
/// A write that fails with a permanent refusal is reported as a `DeadLetterWriteError` (see
/// ``classify(_:letter:producerLimit:)``), so the pipeline writes a stub of a letter that is too
/// large and names the fix of a refusal; other failures are rethrown as the ``KafkaError`` they are.
public struct KafkaDeadLetterSink: DeadLetterSink {
    private let producer: KafkaProducer

    /// A sink writing with `producer` (keep it idempotent, as ``KafkaProducerConfiguration`` is by default).
    public init(producer: KafkaProducer) {
        self.producer = producer
    }

    public func send(_ record: DeadLetterRecord) async throws {
        do {
            try await producer.send(ProducerRecord(topic: record.topic, key: record.key, value: record.value, headers: record.headers))
        } catch {
            throw Self.classify(error, letter: record, producerLimit: producer.configuration.messageMaxBytes) ?? error
        }
    }

    /// What a failed dead-letter write means, or `nil` when it may pass by itself (a transient
    /// failure: the broker down, a leader moving, a timeout, and every code not listed below).
    ///
    /// - Too large (written again as a stub): `MSG_SIZE_TOO_LARGE` (librdkafka refuses a record
    ///   over the producer's `message.max.bytes` when it is queued; a broker refuses one over the
    ///   topic's `max.message.bytes` in the delivery report), `RECORD_LIST_TOO_LARGE` (a broker:
    ///   the batch is over the topic's limit), and `_MSG_SIZE_TOO_LARGE` should a librdkafka name
    ///   it so. The limit is the producer's `message.max.bytes` when the letter is over it (so the
    ///   refusal was librdkafka's); when the broker refused, the topic's limit is not known.
    /// - Refused until fixed (the partition halts and retries, logging the fix): the topic does not
    ///   exist (`_UNKNOWN_TOPIC`, and `UNKNOWN_TOPIC_OR_PART` once librdkafka's own retries ran out
    ///   for the whole delivery timeout), `TOPIC_AUTHORIZATION_FAILED`,
    ///   `CLUSTER_AUTHORIZATION_FAILED` (idempotent writes need `IDEMPOTENT_WRITE` on brokers
    ///   before Kafka 2.8), `TOPIC_EXCEPTION` (an invalid topic name), `INVALID_RECORD` (the
    ///   topic's settings refuse it, e.g. a compacted topic and a null key), `POLICY_VIOLATION`,
    ///   `UNSUPPORTED_FOR_MESSAGE_FORMAT` (a message format too old for headers),
    ///   `INVALID_REQUIRED_ACKS`, `UNSUPPORTED_COMPRESSION_TYPE` and `INVALID_TIMESTAMP`: a
    ///   broker gives the same answer to the same write until its configuration, its ACLs or the
    ///   producer's configuration change.
    public static func classify(_ error: any Error, letter: DeadLetterRecord, producerLimit: Int) -> DeadLetterWriteError? {
        guard let error = error as? KafkaError else { return nil }
        let topic = letter.topic
        let code = error.code.rawValue
        func refused(_ fix: String) -> DeadLetterWriteError {
            DeadLetterWriteError(kind: .refused(fix: fix), code: code, message: error.message)
        }
        switch code {
        case "MSG_SIZE_TOO_LARGE", "_MSG_SIZE_TOO_LARGE", "RECORD_LIST_TOO_LARGE":
            let limit = letter.estimatedSize > producerLimit ? producerLimit : nil
            return DeadLetterWriteError(kind: .tooLarge(limit: limit), code: code, message: error.message)
        case "_UNKNOWN_TOPIC", "UNKNOWN_TOPIC_OR_PART":
            return refused("create topic \(topic) (the cluster does not create it automatically), or configure a dead-letter topic that exists")
        case "TOPIC_AUTHORIZATION_FAILED":
            return refused("grant WRITE (and DESCRIBE) on topic \(topic) to the dead-letter producer's principal")
        case "CLUSTER_AUTHORIZATION_FAILED":
            return refused("grant IDEMPOTENT_WRITE on the cluster to the dead-letter producer's principal (brokers before Kafka 2.8 require it of idempotent producers)")
        case "TOPIC_EXCEPTION":
            return refused("\(topic) is not a valid topic name: configure another dead-letter topic")
        case "INVALID_RECORD":
            return refused("topic \(topic) refuses the record as invalid: check its configuration (a compacted topic, cleanup.policy=compact, refuses records without a key)")
        case "POLICY_VIOLATION":
            return refused("a broker policy refuses writes to topic \(topic): have the cluster's operators allow them")
        case "UNSUPPORTED_FOR_MESSAGE_FORMAT":
            return refused("topic \(topic) uses a message format too old for headers: raise its message.format.version to 0.11 or later")
        case "INVALID_REQUIRED_ACKS":
            return refused("the broker refuses the dead-letter producer's acks setting: use acks=all (the default)")
        case "UNSUPPORTED_COMPRESSION_TYPE":
            return refused("the broker refuses the dead-letter producer's compression.type for topic \(topic): choose one it supports")
        case "INVALID_TIMESTAMP":
            return refused("topic \(topic) refuses the record's timestamp: check this host's clock against the topic's message.timestamp.difference.max.ms")
        default:
            return nil
        }
    }
}

extension KafkaProducerConfiguration {
    /// The largest record the producer accepts, in bytes: its `message.max.bytes` (librdkafka's
    /// default, 1,000,000, when not set).
    public var messageMaxBytes: Int {
        librdkafkaProperties["message.max.bytes"].flatMap { Int($0.trimmingCharacters(in: .whitespaces)) } ?? 1_000_000
    }
}
