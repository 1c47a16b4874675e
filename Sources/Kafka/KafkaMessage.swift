import CRDKafka

/// A consumed record. Its key and value point into librdkafka's memory, which stays valid
/// until the message is released: copy what must outlive it.
///
/// `@unchecked Sendable`: it owns an immutable `rd_kafka_message_t`, destroyed once.
public final class KafkaMessage: @unchecked Sendable {
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

    /// The topic.
    public var topic: String { message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "" }
    /// The partition.
    public var partition: Int32 { message.pointee.partition }
    /// The offset.
    public var offset: Int64 { message.pointee.offset }

    /// When the record was created (its producer's clock) or appended (the broker's), in
    /// milliseconds since the Unix epoch; nil when the record carries no timestamp.
    public var timestampMilliseconds: Int64? {
        var type = RD_KAFKA_TIMESTAMP_NOT_AVAILABLE
        let milliseconds = rd_kafka_message_timestamp(message, &type)
        return type == RD_KAFKA_TIMESTAMP_NOT_AVAILABLE || milliseconds < 0 ? nil : milliseconds
    }

    /// The value's bytes (empty for a null value).
    public var value: UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: message.pointee.payload, count: message.pointee.len)
    }

    /// True when the record has a null value (a tombstone), as opposed to an empty one.
    public var hasNullValue: Bool { message.pointee.payload == nil }

    /// The key's bytes, nil for a null key.
    public var key: UnsafeRawBufferPointer? {
        guard let key = message.pointee.key else { return nil }
        return UnsafeRawBufferPointer(start: key, count: message.pointee.key_len)
    }

    /// The key as UTF-8 text.
    public var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    /// The headers, in order.
    public var headers: [(String, [UInt8])] {
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
