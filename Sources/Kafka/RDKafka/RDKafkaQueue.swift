import CRDKafka

/// Owns one `rd_kafka_queue_t` of a client and destroys it once, before the client (which it
/// keeps alive: librdkafka requires a client's queues to be destroyed first).
///
/// `@unchecked Sendable`: librdkafka queues are thread-safe; this class only holds the pointer.
final class RDKafkaQueue: @unchecked Sendable {
    let handle: OpaquePointer
    private let client: RDKafkaClient

    /// A new, empty queue of `client`.
    init(client: RDKafkaClient) {
        self.client = client
        handle = rd_kafka_queue_new(client.handle)
    }

    deinit { rd_kafka_queue_destroy(handle) }
}
