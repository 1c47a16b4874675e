import CRDKafka

/// Reads the offsets another consumer group has committed, without joining it: how the
/// aggregators learn how far the workers have got through the chunks.
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; use it from one thread.
public final class KafkaGroupOffsets: @unchecked Sendable {
    private let client: RDKafkaClient

    /// A reader of `group`'s committed offsets. The client never subscribes, so it never
    /// becomes a member of the group.
    public init(configuration: KafkaConfiguration, group: String) throws(KafkaError) {
        var configuration = configuration
        configuration["group.id"] = group
        configuration["enable.auto.commit"] = "false"
        client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, configuration: configuration)
    }

    /// For each partition of `topic`, the offset the group resumes from; partitions the group
    /// has never committed are left out. Each of the (at most two) requests waits at most
    /// `timeoutMilliseconds`.
    public func committed(topic: String, timeoutMilliseconds: Int32 = 2_000) throws(KafkaError) -> [Int32: Int64] {
        let partitions = try client.partitionCount(of: topic, timeoutMilliseconds: timeoutMilliseconds)
        var result = RD_KAFKA_RESP_ERR_NO_ERROR
        let offsets = withTopicPartitionList((0..<partitions).map { (topic, $0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
            result = rd_kafka_committed(client.handle, list, timeoutMilliseconds)
            var offsets: [Int32: Int64] = [:]
            for index in 0..<Int(list.pointee.cnt) where list.pointee.elems[index].offset >= 0 {
                offsets[list.pointee.elems[index].partition] = list.pointee.elems[index].offset
            }
            return offsets
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "committed offsets of the group") }
        return offsets
    }
}
