import CRDKafka
import Sluice

/// The one owner of an `rd_kafka_topic_partition_list_t`, and conversions to and from Swift values.
final class RDKafkaTopicPartitionList {
    let pointer: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>

    init(capacity: Int = 1) {
        pointer = rd_kafka_topic_partition_list_new(Int32(max(capacity, 1)))
    }

    convenience init(_ partitions: [TopicPartition], offset: Offset = .invalid) {
        self.init(capacity: partitions.count)
        for partition in partitions { add(partition, offset: offset) }
    }

    convenience init(_ offsets: [TopicPartition: Offset]) {
        self.init(capacity: offsets.count)
        for (partition, offset) in offsets.sorted(by: { $0.key < $1.key }) { add(partition, offset: offset) }
    }

    deinit { rd_kafka_topic_partition_list_destroy(pointer) }

    func add(_ partition: TopicPartition, offset: Offset) {
        let element = rd_kafka_topic_partition_list_add(pointer, partition.topic, partition.partition)
        element?.pointee.offset = offset.rawValue
    }

    var elements: UnsafeMutableBufferPointer<rd_kafka_topic_partition_t> {
        UnsafeMutableBufferPointer(start: pointer.pointee.elems, count: Int(pointer.pointee.cnt))
    }

    /// Each partition with its offset.
    var offsets: [TopicPartition: Offset] {
        var result: [TopicPartition: Offset] = [:]
        for element in elements {
            result[TopicPartition(topic: String(cString: element.topic), partition: element.partition)] =
                Offset(element.offset)
        }
        return result
    }

    /// Per-partition errors set by librdkafka in the list.
    func partitionErrors() -> [KafkaError.PartitionError] {
        elements.compactMap { element in
            guard element.err != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
            return KafkaError.PartitionError(
                topic: String(cString: element.topic), partition: element.partition,
                code: KafkaError.Code(rawValue: String(cString: rd_kafka_err2name(element.err))),
                number: element.err.rawValue)
        }
    }

    static func topicPartitions(in list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [TopicPartition] {
        UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt)).map {
            TopicPartition(topic: String(cString: $0.topic), partition: $0.partition)
        }
    }

    static func setOffsets(
        _ offsets: [TopicPartition: Offset], in list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>
    ) {
        guard !offsets.isEmpty else { return }
        let elements = UnsafeMutableBufferPointer(start: list.pointee.elems, count: Int(list.pointee.cnt))
        for index in elements.indices {
            let key = TopicPartition(topic: String(cString: elements[index].topic), partition: elements[index].partition)
            if let offset = offsets[key] { elements[index].offset = offset.rawValue }
        }
    }
}
