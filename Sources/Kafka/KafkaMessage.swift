/// A consumed record. Its key and value point into librdkafka's memory, which stays valid
/// until the message is released: copy what must outlive it.
public final class KafkaMessage: Sendable {
    private let message: RDKafkaMessage

    init(_ message: RDKafkaMessage) { self.message = message }

    /// The topic.
    public var topic: String { message.topic }
    /// The partition.
    public var partition: Int32 { message.partition }
    /// The offset.
    public var offset: Int64 { message.offset }

    /// When the record was created (its producer's clock) or appended (the broker's), in
    /// milliseconds since the Unix epoch; nil when the record carries no timestamp.
    public var timestampMilliseconds: Int64? { message.timestampMilliseconds }

    /// The value's bytes (empty for a null value).
    public var value: UnsafeRawBufferPointer { message.value }

    /// True when the record has a null value (a tombstone), as opposed to an empty one.
    public var hasNullValue: Bool { message.hasNullValue }

    /// The key's bytes, nil for a null key.
    public var key: UnsafeRawBufferPointer? { message.key }

    /// The key as UTF-8 text.
    public var keyText: String? { key.map { String(decoding: $0, as: UTF8.self) } }

    /// The headers, in order.
    public var headers: [(String, [UInt8])] { message.headers }
}
