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
        client = try RDKafkaClient(kind: .consumer, configuration: configuration)
    }

    /// For each partition of `topic`, the offset the group resumes from; partitions the group
    /// has never committed are left out. Each of the (at most two) requests waits at most
    /// `timeoutMilliseconds`.
    public func committed(topic: String, timeoutMilliseconds: Int32 = 2_000) throws(KafkaError) -> [Int32: Int64] {
        let partitions = try client.partitionCount(of: topic, timeoutMilliseconds: timeoutMilliseconds)
        return try client.committedOffsets(topic: topic, partitions: partitions, timeoutMilliseconds: timeoutMilliseconds)
    }
}
