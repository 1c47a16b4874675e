import CRDKafka

/// Owns one `rd_kafka_message_t` a client returned and destroys it once; reads its fields.
///
/// `@unchecked Sendable`: the message is immutable once returned, and destroyed once.
final class RDKafkaMessage: @unchecked Sendable {
    private let message: UnsafeMutablePointer<rd_kafka_message_t>
    /// The client the message came from: librdkafka's destroy waits for every message of a
    /// client to be released, so the client must outlive its messages.
    private let client: RDKafkaClient

    /// Takes ownership of `message`, which `client` returned.
    init(_ message: UnsafeMutablePointer<rd_kafka_message_t>, client: RDKafkaClient) {
        self.message = message
        self.client = client
    }

    deinit { rd_kafka_message_destroy(message) }

    var topic: String { message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "" }
    var partition: Int32 { message.pointee.partition }
    var offset: Int64 { message.pointee.offset }

    /// Milliseconds since the Unix epoch; nil when the record carries no timestamp.
    var timestampMilliseconds: Int64? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &type)
        return type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || milliseconds < 0 ? nil : milliseconds
    }

    var value: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: message.pointee.payload, count: message.pointee.len) }
    var hasNullValue: Bool { message.pointee.payload == nil }

    var key: UnsafeRawBufferPointer? {
        guard let key = message.pointee.key else { return nil }
        return UnsafeRawBufferPointer(start: key, count: message.pointee.key_len)
    }

    var headers: [(String, [UInt8])] {
        var headers: OpaquePointer?
        guard rd_kafka_message_headers(message, &headers) == RD_KAFKA_RESP_ERR_NO_ERROR, let headers else { return [] }
        var result: [(String, [UInt8])] = []
        var index = 0
        while true {
            var name: UnsafePointer<CChar>?
            var value: UnsafeRawPointer?
            var size = 0
            guard rd_kafka_header_get_all(headers, index, &name, &value, &size) == RD_KAFKA_RESP_ERR_NO_ERROR else { break }
            let bytes = value.map { Array(UnsafeRawBufferPointer(start: $0, count: size)) } ?? []
            result.append((name.map { String(cString: $0) } ?? "", bytes))
            index += 1
        }
        return result
    }
}

/// What a consumer's poll returned.
enum RDKafkaPolled {
    /// Nothing within the time allowed.
    case nothing
    /// A record.
    case record(KafkaMessage)
    /// The end of a partition was reached at `offset` (with `enable.partition.eof`).
    case endOfPartition(partition: Int32, offset: Int64)
    /// The offset asked for is outside the partition (deleted, or past its end): librdkafka's text.
    case outOfRange(partition: Int32, String)
    /// Another (transient) error, retried by librdkafka.
    case error(KafkaError)
}

extension RDKafkaClient {
    /// Turns what a poll returned into `RDKafkaPolled`, taking ownership of it.
    func polled(_ raw: UnsafeMutablePointer<rd_kafka_message_t>?) -> RDKafkaPolled {
        guard let raw else { return .nothing }
        let (error, partition, offset) = (raw.pointee.err, raw.pointee.partition, raw.pointee.offset)
        switch error {
        case RD_KAFKA_RESP_ERR_NO_ERROR:
            return .record(KafkaMessage(RDKafkaMessage(raw, client: self)))
        case RD_KAFKA_RESP_ERR__PARTITION_EOF:
            rd_kafka_message_destroy(raw)
            return .endOfPartition(partition: partition, offset: offset)
        case RD_KAFKA_RESP_ERR__AUTO_OFFSET_RESET, RD_KAFKA_RESP_ERR_OFFSET_OUT_OF_RANGE:
            rd_kafka_message_destroy(raw)
            return .outOfRange(partition: partition, String(cString: rd_kafka_err2str(error)))
        default:
            rd_kafka_message_destroy(raw)
            return .error(KafkaError(error, context: "poll"))
        }
    }

    /// The next message or event of a consumer (its group's, or its assignment's).
    func consumerPoll(timeoutMilliseconds: Int32) -> RDKafkaPolled {
        polled(rd_kafka_consumer_poll(handle, timeoutMilliseconds))
    }
}
