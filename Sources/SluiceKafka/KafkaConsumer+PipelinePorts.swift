import Sluice

extension KafkaConsumer: PartitionFlowControl, OffsetCommitter {
    // `pause(_:)`, `resume(_:)` and `commit(_:)` of KafkaConsumer satisfy the pipeline's ports:
    // the dispatcher pauses full lanes' partitions here, and the committer commits watermarks.
}
