import CRDKafka
import Sluice

extension RDKafkaClient {
    /// Topic names and partition counts from the cluster's metadata (internal topics excluded).
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    func topicPartitionCounts(timeoutMilliseconds: Int32) throws(KafkaError) -> [String: Int] {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let code = rd_kafka_metadata(handle, 1, nil, &metadata, timeoutMilliseconds)
        guard code == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else { throw error(code, context: "metadata") }
        defer { rd_kafka_metadata_destroy(metadata) }
        var result: [String: Int] = [:]
        for topic in UnsafeBufferPointer(start: metadata.pointee.topics, count: Int(metadata.pointee.topic_cnt)) {
            guard topic.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            let name = String(cString: topic.topic)
            if name.hasPrefix("__") { continue }
            result[name] = Int(topic.partition_cnt)
        }
        return result
    }

    /// Creates topics and reports each topic's own result.
    ///
    /// - Important: Blocks up to `timeoutMilliseconds`.
    func createTopics(
        _ topics: [(name: String, partitions: Int32, replicationFactor: Int32, config: [String: String])],
        timeoutMilliseconds: Int32
    ) throws(KafkaError) -> [String: KafkaError?] {
        var errorText = [CChar](repeating: 0, count: 512)
        var newTopics: [OpaquePointer?] = []
        defer { for topic in newTopics { rd_kafka_NewTopic_destroy(topic) } }
        for topic in topics {
            guard let newTopic = rd_kafka_NewTopic_new(
                topic.name, topic.partitions, topic.replicationFactor, &errorText, errorText.count)
            else {
                throw KafkaError.invalidArgument("topic \(topic.name): " + errorText.nulTerminatedString)
            }
            newTopics.append(newTopic)
            for (name, value) in topic.config.sorted(by: { $0.key < $1.key }) {
                let code = rd_kafka_NewTopic_set_config(newTopic, name, value)
                guard code == RD_KAFKA_RESP_ERR_NO_ERROR else {
                    throw error(code, context: "topic \(topic.name) config \(name)")
                }
            }
        }
        let queue = rd_kafka_queue_new(handle)
        defer { rd_kafka_queue_destroy(queue) }
        let options = rd_kafka_AdminOptions_new(handle, RD_KAFKA_ADMIN_OP_CREATETOPICS)
        defer { rd_kafka_AdminOptions_destroy(options) }
        rd_kafka_AdminOptions_set_operation_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        rd_kafka_AdminOptions_set_request_timeout(options, timeoutMilliseconds, &errorText, errorText.count)
        newTopics.withUnsafeMutableBufferPointer { buffer in
            rd_kafka_CreateTopics(handle, buffer.baseAddress, buffer.count, options, queue)
        }
        guard let event = rd_kafka_queue_poll(queue, timeoutMilliseconds + 1_000) else {
            throw error(RD_KAFKA_RESP_ERR__TIMED_OUT, context: "create topics")
        }
        defer { rd_kafka_event_destroy(event) }
        let eventCode = rd_kafka_event_error(event)
        guard eventCode == RD_KAFKA_RESP_ERR_NO_ERROR else {
            var failure = error(eventCode, context: "create topics")
            if let text = rd_kafka_event_error_string(event) {
                failure.message = redactor.redact("create topics: " + String(cString: text))
            }
            throw failure
        }
        var results: [String: KafkaError?] = [:]
        var count = 0
        guard let result = rd_kafka_event_CreateTopics_result(event),
            let topicResults = rd_kafka_CreateTopics_result_topics(result, &count)
        else { return results }
        for index in 0..<count {
            let topicResult = topicResults[index]
            let name = String(cString: rd_kafka_topic_result_name(topicResult))
            let code = rd_kafka_topic_result_error(topicResult)
            if code == RD_KAFKA_RESP_ERR_NO_ERROR {
                results[name] = .some(nil)
            } else {
                var failure = error(code, context: "create topic \(name)")
                if let text = rd_kafka_topic_result_error_string(topicResult) {
                    failure.message = "create topic \(name): " + String(cString: text)
                }
                results[name] = failure
            }
        }
        return results
    }
}
