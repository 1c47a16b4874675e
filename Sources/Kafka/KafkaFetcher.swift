import CRDKafka

/// Reads records by (partition, offset) without joining a group: the way workers re-read
/// chunks for pass 2 and repairs, and the conditional a task names.
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; use it from one thread.
public final class KafkaFetcher: @unchecked Sendable {
    private let client: RDKafkaClient
    private let timeoutMilliseconds: Int32

    /// Creates a fetcher; a fetch that has not found its records after `timeoutMilliseconds`
    /// fails.
    public init(configuration: KafkaConfiguration, timeoutMilliseconds: Int32 = 30_000) throws(KafkaError) {
        var configuration = configuration
        // librdkafka wants a group id even for manual assignment; nothing is ever committed.
        if configuration["group.id"] == nil { configuration["group.id"] = "leepstream-fetcher" }
        configuration["enable.auto.commit"] = "false"
        configuration["auto.offset.reset"] = "earliest"
        // Reads by offset want the record now: do not let the broker hold a fetch back waiting
        // for more data (the default waits up to 500 ms per fetch).
        if configuration["fetch.wait.max.ms"] == nil { configuration["fetch.wait.max.ms"] = "10" }
        client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, configuration: configuration)
        rd_kafka_poll_set_consumer(client.handle)
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    private struct LocationKey: Hashable {
        let partition: Int32
        let offset: Int64
    }

    /// The records of `topic` at `locations` ((partition, offset) pairs), in the order asked.
    /// Each partition is read forward from the smallest offset asked of it.
    public func fetch(topic: String, locations: [(partition: Int32, offset: Int64)]) throws(KafkaError) -> [KafkaMessage] {
        guard !locations.isEmpty else { return [] }
        var wanted: [Int32: Set<Int64>] = [:]
        for location in locations { wanted[location.partition, default: []].insert(location.offset) }
        let starts = wanted.map { (topic, $0.key, $0.value.min()!) }
        let assigned = withTopicPartitionList(starts) { rd_kafka_assign(client.handle, $0) }
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(assigned, context: "assign \(topic)") }
        defer { rd_kafka_assign(client.handle, nil) }

        var found: [Int32: [Int64: KafkaMessage]] = [:]
        var missing = Set(locations.map { LocationKey(partition: $0.partition, offset: $0.offset) })
        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(timeoutMilliseconds)))
        while !missing.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(message: "fetch from \(topic): \(missing.count) records not found within \(timeoutMilliseconds) ms")
            }
            guard let raw = rd_kafka_consumer_poll(client.handle, 200) else { continue }
            let message = KafkaMessage(raw, client: client)
            guard raw.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else { continue }
            guard missing.remove(LocationKey(partition: message.partition, offset: message.offset)) != nil else { continue }
            found[message.partition, default: [:]][message.offset] = message
        }
        return locations.map { found[$0.partition]![$0.offset]! }
    }
}

/// Reads every partition of one topic from its beginning, without a group: how `leep scores`
/// reads the score topic (every subscriber sees every score, whenever it starts).
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; use it from one thread.
public final class KafkaTopicReader: @unchecked Sendable {
    private let client: RDKafkaClient

    /// Assigns `partitions` of `topic` (all of them when nil) at their beginning.
    public init(configuration: KafkaConfiguration, topic: String, partitions: [Int32]? = nil) throws(KafkaError) {
        var configuration = configuration
        if configuration["group.id"] == nil { configuration["group.id"] = "leepstream-reader" }
        configuration["enable.auto.commit"] = "false"
        client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, configuration: configuration)
        rd_kafka_poll_set_consumer(client.handle)
        let partitions = if let partitions { partitions } else { Array(0..<(try client.partitionCount(of: topic))) }
        let assigned = withTopicPartitionList(partitions.map { (topic, $0, Int64(RD_KAFKA_OFFSET_BEGINNING)) }) {
            rd_kafka_assign(client.handle, $0)
        }
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(assigned, context: "assign \(topic)") }
    }

    /// The next record, or nil when none arrived within `timeoutMilliseconds`.
    public func poll(timeoutMilliseconds: Int32) -> KafkaMessage? {
        guard let raw = rd_kafka_consumer_poll(client.handle, timeoutMilliseconds) else { return nil }
        guard raw.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_message_destroy(raw)
            return nil
        }
        return KafkaMessage(raw, client: client)
    }
}
