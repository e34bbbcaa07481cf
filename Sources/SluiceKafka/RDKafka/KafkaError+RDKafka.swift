import CRDKafka

extension KafkaError {
    /// An error under librdkafka's `code`: its name and number come from librdkafka itself
    /// (`rd_kafka_err2name`), the message from Sluice, so no name or number is typed by hand.
    package static func librdkafka(_ code: rd_kafka_resp_err_t, _ message: String, isRetriable: Bool = false) -> KafkaError {
        KafkaError(
            code: Code(rawValue: String(cString: rd_kafka_err2name(code))), number: code.rawValue,
            message: message, isRetriable: isRetriable)
    }

    /// `_INVALID_ARG`: the call cannot work as made (a consumer without a group asked to subscribe,
    /// a cluster of no brokers, a topic librdkafka cannot describe).
    package static func invalidArgument(_ message: String) -> KafkaError {
        .librdkafka(RD_KAFKA_RESP_ERR__INVALID_ARG, message)
    }

    /// `_UNKNOWN_GROUP`: the consumer has no group (or no group queue) for what was asked.
    package static func unknownGroup(_ message: String) -> KafkaError {
        .librdkafka(RD_KAFKA_RESP_ERR__UNKNOWN_GROUP, message)
    }

    /// `_TIMED_OUT`, retriable: the broker did not answer in time.
    package static func timedOut(_ message: String) -> KafkaError {
        .librdkafka(RD_KAFKA_RESP_ERR__TIMED_OUT, message, isRetriable: true)
    }

    /// `_CONFLICT`: the call clashes with one already under way.
    package static func conflict(_ message: String) -> KafkaError {
        .librdkafka(RD_KAFKA_RESP_ERR__CONFLICT, message)
    }

    /// `_FAIL`: librdkafka refused without saying more (an allocation that failed).
    package static func failure(_ message: String) -> KafkaError {
        .librdkafka(RD_KAFKA_RESP_ERR__FAIL, message)
    }

    /// ``Code/clientClosed`` (with librdkafka's `_STATE` number): the client was closed first.
    package static func clientClosed(_ message: String) -> KafkaError {
        KafkaError(code: .clientClosed, number: RD_KAFKA_RESP_ERR__STATE.rawValue, message: message)
    }

    /// ``Code/cancelled`` (with librdkafka's `_QUEUE_FULL` number): the task was cancelled while it
    /// waited for room in the producer's queue; nothing was queued.
    package static func cancelledWhileQueueFull(_ message: String) -> KafkaError {
        KafkaError(code: .cancelled, number: RD_KAFKA_RESP_ERR__QUEUE_FULL.rawValue, message: message)
    }

    /// ``Code/cancelled`` (with librdkafka's `_TIMED_OUT_QUEUE` number): the task was cancelled while
    /// it waited for a queued record's delivery report; the record may still be delivered.
    package static func cancelledWhileWaitingForDelivery(_ message: String) -> KafkaError {
        KafkaError(code: .cancelled, number: RD_KAFKA_RESP_ERR__TIMED_OUT_QUEUE.rawValue, message: message)
    }
}
