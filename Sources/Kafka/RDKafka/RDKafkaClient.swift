import CRDKafka

/// Owns one `rd_kafka_t` handle and destroys it once. Every call into librdkafka is made here or
/// in the other files of `RDKafka/`: the public types of the module hold an `RDKafkaClient` and
/// speak Swift to it (`ops/check-c-calls` checks that no other file imports `CRDKafka`).
///
/// `@unchecked Sendable`: librdkafka handles are thread-safe; this class only holds the pointer.
final class RDKafkaClient: @unchecked Sendable {
    /// Which kind of client.
    enum Kind {
        case producer, consumer
    }

    let handle: OpaquePointer

    /// Builds a client of `kind` from `configuration`. A producer's delivery reports go to the
    /// `RDKafkaDeliveryTarget` each record names; a consumer given `rebalance` reports its
    /// rebalances there (`RDKafkaRebalanceTarget`, kept alive by the caller).
    init(kind: Kind, configuration: KafkaConfiguration, rebalance: RDKafkaRebalanceTarget? = nil) throws(KafkaError) {
        let conf = rd_kafka_conf_new()!
        var errorText = [CChar](repeating: 0, count: 512)
        for (key, value) in configuration.properties.sorted(by: { $0.key < $1.key }) {
            let result = rd_kafka_conf_set(conf, key, value, &errorText, errorText.count)
            guard result == RD_KAFKA_CONF_OK else {
                rd_kafka_conf_destroy(conf)
                // librdkafka's text may quote the value: for a secret, name the key only.
                let detail = KafkaConfiguration.isSecret(key) ? "invalid value (not shown: secret)" : cText(errorText)
                throw KafkaError(message: "invalid Kafka property \(key): \(detail)", isConfigurationError: true)
            }
        }
        installLibraryLog(on: conf)
        if kind == .producer { rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback) }
        if let rebalance {
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(rebalance).toOpaque())
        }
        guard let handle = rd_kafka_new(kind == .producer ? RD_KAFKA_PRODUCER : RD_KAFKA_CONSUMER, conf, &errorText, errorText.count)
        else {
            rd_kafka_conf_destroy(conf)
            throw KafkaError(message: "cannot create Kafka client: \(cText(errorText))", isConfigurationError: true)
        }
        self.handle = handle
        // A consumer's events (rebalances, errors) are served by its consumer poll.
        if kind == .consumer { rd_kafka_poll_set_consumer(handle) }
    }

    // No implicit consumer close: a role closes its consumer itself when it stops cleanly, and
    // one that failed must not wait on a broker that may not answer before it is rebuilt.
    deinit { rd_kafka_destroy_flags(handle, RD_KAFKA_DESTROY_F_NO_CONSUMER_CLOSE) }

    /// Asks the cluster for its brokers (a metadata request naming no topic); nil when one
    /// answered within `timeoutMilliseconds`, else why not.
    func probe(timeoutMilliseconds: Int32) -> KafkaError? {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let result = rd_kafka_metadata(handle, 0, nil, &metadata, timeoutMilliseconds)
        if let metadata { rd_kafka_metadata_destroy(metadata) }
        return result == RD_KAFKA_RESP_ERR_NO_ERROR ? nil : KafkaError(result, context: "metadata request")
    }

    /// The client's fatal error, if it has had one: it can do nothing more and must be replaced.
    var fatalError: KafkaError? {
        var text = [CChar](repeating: 0, count: 512)
        let code = rd_kafka_fatal_error(handle, &text, text.count)
        guard code != RD_KAFKA_RESP_ERR_NO_ERROR else { return nil }
        return KafkaError(code: code.rawValue, message: "fatal error: \(cText(text))", isFatal: true)
    }

    /// librdkafka's version string, for logs.
    static var libraryVersion: String { String(cString: rd_kafka_version_str()) }

    /// librdkafka's version as a number, 0xMMmmrrxx (2.1.0 is 0x020100ff).
    static var libraryVersionNumber: Int32 { rd_kafka_version() }

    /// The number of partitions of `topic`, from the cluster's metadata.
    func partitionCount(of topic: String, timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) -> Int32 {
        var metadata: UnsafePointer<rd_kafka_metadata>?
        let topicHandle = rd_kafka_topic_new(handle, topic, nil)
        defer { rd_kafka_topic_destroy(topicHandle) }
        let result = rd_kafka_metadata(handle, 0, topicHandle, &metadata, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR, let metadata else {
            throw KafkaLibrary.advising(KafkaError(result, context: "metadata of \(topic)"))
        }
        defer { rd_kafka_metadata_destroy(metadata) }
        guard metadata.pointee.topic_cnt > 0, metadata.pointee.topics[0].err == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(message: "topic \(topic) does not exist (run `leep topics create` or `ops/broker start`)")
        }
        return metadata.pointee.topics[0].partition_cnt
    }
}

/// Builds a C topic-partition list and frees it after use.
func withTopicPartitionList<Result>(
    _ entries: [(topic: String, partition: Int32, offset: Int64)],
    _ body: (UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) throws -> Result
) rethrows -> Result {
    let list = rd_kafka_topic_partition_list_new(Int32(max(entries.count, 1)))!
    defer { rd_kafka_topic_partition_list_destroy(list) }
    for entry in entries {
        let element = rd_kafka_topic_partition_list_add(list, entry.topic, entry.partition)!
        element.pointee.offset = entry.offset
    }
    return try body(list)
}

/// The (topic, partition, offset) entries of a C list.
func entries(of list: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>) -> [KafkaTopicPartition] {
    (0..<Int(list.pointee.cnt)).map { index in
        let element = list.pointee.elems[index]
        return KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition)
    }
}

/// A partition of a topic.
public struct KafkaTopicPartition: Hashable, Sendable, CustomStringConvertible {
    /// The topic.
    public let topic: String
    /// The partition.
    public let partition: Int32

    /// Creates a topic partition.
    public init(topic: String, partition: Int32) {
        self.topic = topic
        self.partition = partition
    }

    public var description: String { "\(topic)[\(partition)]" }
}

/// The NUL-terminated text librdkafka wrote into `buffer`.
func cText(_ buffer: [CChar]) -> String {
    String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
}
