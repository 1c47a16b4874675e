import Kafka

/// Where a worker's records go: the broker (`KafkaProducer`), or a test's memory.
protocol RecordSink: Sendable {
    /// Publishes `records` and returns once all are delivered; throws if any is not.
    func deliver(_ records: [OutgoingRecord]) throws
}

extension KafkaProducer: RecordSink {
    func deliver(_ records: [OutgoingRecord]) throws {
        try send(records)
    }
}
