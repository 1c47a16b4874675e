import CRDKafka
import Synchronization

/// A record to publish.
public struct OutgoingRecord: Sendable {
    /// The topic.
    public let topic: String
    /// The key: records with the same key land in the same partition, in order. Nil spreads
    /// records over all partitions.
    public let key: [UInt8]?
    /// The value.
    public let value: [UInt8]
    /// Headers, in order.
    public let headers: [(String, [UInt8])]
    /// The partition, when the producer chooses it; nil leaves it to the key (or to the
    /// partitioner for records without one).
    public let partition: Int32?

    /// Creates a record.
    public init(
        topic: String, key: [UInt8]? = nil, value: [UInt8], headers: [(String, [UInt8])] = [], partition: Int32? = nil
    ) {
        self.topic = topic
        self.key = key
        self.value = value
        self.headers = headers
        self.partition = partition
    }

    /// Creates a record with a string key.
    public init(topic: String, key: String, value: [UInt8], headers: [(String, [UInt8])] = []) {
        self.init(topic: topic, key: Array(key.utf8), value: value, headers: headers)
    }
}

/// Where a record landed, from librdkafka's delivery report.
public struct DeliveryReport: Sendable, Hashable {
    /// The topic.
    public let topic: String
    /// The partition it was written to.
    public let partition: Int32
    /// Its offset in that partition.
    public let offset: Int64
}

/// A Kafka producer that publishes batches and returns where each record landed.
///
/// `send` blocks the calling thread until every record of the batch is delivered (or failed):
/// callers that need locations (manifests) or at-least-once ordering (commit after delivery)
/// get them without callbacks. Batching amortises librdkafka's per-call cost; see
/// swift-kafka-client's issue #132 for what per-message async overhead costs.
///
/// `@unchecked Sendable`: it holds only the thread-safe librdkafka handle.
public final class KafkaProducer: @unchecked Sendable {
    private let client: RDKafkaClient

    /// Creates a producer. Idempotence is on by default, so librdkafka's own retries never
    /// duplicate or reorder a record.
    public init(configuration: KafkaConfiguration) throws(KafkaError) {
        var configuration = configuration
        // One configuration often serves a role's consumer and producer; librdkafka would warn
        // about each consumer-only property a producer is given.
        for key in Self.consumerOnlyProperties { configuration[key] = nil }
        if configuration["enable.idempotence"] == nil { configuration["enable.idempotence"] = "true" }
        if configuration["linger.ms"] == nil { configuration["linger.ms"] = "5" }
        // The Java client's partitioner, so producers in any language put a key in the same
        // partition (librdkafka's own default hashes keys differently).
        if configuration["partitioner"] == nil { configuration["partitioner"] = "murmur2_random" }
        client = try RDKafkaClient(type: RD_KAFKA_PRODUCER, configuration: configuration) { conf in
            rd_kafka_conf_set_dr_msg_cb(conf, deliveryReportCallback)
        }
    }

    private static let consumerOnlyProperties = [
        "group.id", "session.timeout.ms", "heartbeat.interval.ms", "fetch.max.bytes", "auto.offset.reset",
        "enable.auto.commit", "partition.assignment.strategy", "max.poll.interval.ms", "isolation.level",
        "fetch.wait.max.ms", "fetch.min.bytes", "max.partition.fetch.bytes", "group.instance.id",
    ]

    /// Publishes `records` and waits until all are acknowledged; returns their locations in
    /// the order of `records`, or throws the first failure.
    @discardableResult
    public func send(_ records: [OutgoingRecord]) throws(KafkaError) -> [DeliveryReport] {
        let batch = DeliveryBatch(count: records.count)
        for (index, record) in records.enumerated() {
            try enqueue(record, slot: DeliverySlot(batch: batch, index: index))
        }
        while !batch.isComplete {
            rd_kafka_poll(client.handle, 50)
        }
        do {
            return try batch.reports()
        } catch {
            // A fatally failed producer (fenced, or its idempotence state lost with a broker's
            // data) fails every record from now on: say so, so that the owner replaces it
            // instead of retrying.
            if let fatal = client.fatalError { throw KafkaError(code: fatal.code, message: "producer: \(fatal)", isFatal: true) }
            // The broker no longer knows this producer's id (it lost its state, or another
            // producer took the id over): librdkafka does not always call that fatal for an
            // idempotent producer, yet every later batch fails the same way.
            if let code = error.code, Self.replaceOn.contains(code) {
                throw KafkaError(code: code, message: "producer must be replaced: \(error)", isFatal: true)
            }
            throw error
        }
    }

    /// Delivery errors that say the broker has no valid state for this producer's id.
    private static let replaceOn: Set<Int32> = [
        RD_KAFKA_RESP_ERR_OUT_OF_ORDER_SEQUENCE_NUMBER, RD_KAFKA_RESP_ERR_INVALID_PRODUCER_EPOCH,
        RD_KAFKA_RESP_ERR_INVALID_PRODUCER_ID_MAPPING, RD_KAFKA_RESP_ERR_UNKNOWN_PRODUCER_ID, RD_KAFKA_RESP_ERR_PRODUCER_FENCED,
    ].reduce(into: []) { $0.insert($1.rawValue) }

    /// Hands one record to librdkafka, waiting for queue space when its queue is full.
    private func enqueue(_ record: OutgoingRecord, slot: DeliverySlot) throws(KafkaError) {
        let opaque = Unmanaged.passRetained(slot).toOpaque()
        while true {
            let error: OpaquePointer? = record.topic.withCString { topic in
                record.value.withUnsafeBytes { value in
                    withKey(record.key) { key in
                        withHeaderValues(record.headers) { headers in
                            var values: [rd_kafka_vu_t] = []
                            values.append(vu(RD_KAFKA_VTYPE_TOPIC) { $0.cstr = topic })
                            values.append(vu(RD_KAFKA_VTYPE_VALUE) {
                                $0.mem.ptr = UnsafeMutableRawPointer(mutating: value.baseAddress)
                                $0.mem.size = value.count
                            })
                            if let partition = record.partition {
                                values.append(vu(RD_KAFKA_VTYPE_PARTITION) { $0.i32 = partition })
                            }
                            if let key {
                                values.append(vu(RD_KAFKA_VTYPE_KEY) {
                                    $0.mem.ptr = UnsafeMutableRawPointer(mutating: key.baseAddress)
                                    $0.mem.size = key.count
                                })
                            }
                            for header in headers {
                                values.append(vu(RD_KAFKA_VTYPE_HEADER) {
                                    $0.header.name = header.name
                                    $0.header.val = header.value.baseAddress
                                    $0.header.size = header.value.count
                                })
                            }
                            values.append(vu(RD_KAFKA_VTYPE_MSGFLAGS) { $0.i = RD_KAFKA_MSG_F_COPY })
                            values.append(vu(RD_KAFKA_VTYPE_OPAQUE) { $0.ptr = opaque })
                            return rd_kafka_produceva(client.handle, values, values.count)
                        }
                    }
                }
            }
            guard let error else { return }
            if rd_kafka_error_code(error) == RD_KAFKA_RESP_ERR__QUEUE_FULL {
                // librdkafka's queue is full: serve delivery reports to make room, then retry.
                rd_kafka_error_destroy(error)
                rd_kafka_poll(client.handle, 100)
                continue
            }
            Unmanaged<DeliverySlot>.fromOpaque(opaque).release()
            throw KafkaError(consuming: error, context: "produce to \(record.topic)")
        }
    }

    /// The number of partitions of `topic`, from the cluster's metadata.
    public func partitionCount(of topic: String) throws(KafkaError) -> Int32 {
        try client.partitionCount(of: topic)
    }

    /// Asks the cluster for its brokers; nil when one answered within `timeoutMilliseconds`.
    public func probeBroker(timeoutMilliseconds: Int32) -> KafkaError? {
        client.probe(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Waits up to `timeoutMilliseconds` for everything queued to be delivered.
    public func flush(timeoutMilliseconds: Int32 = 10_000) throws(KafkaError) {
        let result = rd_kafka_flush(client.handle, timeoutMilliseconds)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "flush") }
    }
}

/// One value of the argument list of `rd_kafka_produceva`.
private func vu(_ type: rd_kafka_vtype_t, _ fill: (inout rd_kafka_vu_t.__Unnamed_union_u) -> Void) -> rd_kafka_vu_t {
    var value = rd_kafka_vu_t()
    value.vtype = type
    fill(&value.u)
    return value
}

private func withKey<Result>(_ key: [UInt8]?, _ body: (UnsafeRawBufferPointer?) -> Result) -> Result {
    guard let key else { return body(nil) }
    return key.withUnsafeBytes { body($0) }
}

/// Keeps the C strings and bytes of `headers` alive while `body` runs.
private func withHeaderValues<Result>(
    _ headers: [(String, [UInt8])],
    _ body: ([(name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer)]) -> Result
) -> Result {
    func step(_ index: Int, _ done: [(name: UnsafePointer<CChar>, value: UnsafeRawBufferPointer)]) -> Result {
        guard index < headers.count else { return body(done) }
        return headers[index].0.withCString { name in
            headers[index].1.withUnsafeBytes { value in step(index + 1, done + [(name, value)]) }
        }
    }
    return step(0, [])
}

/// The delivery outcomes of one `send`, filled in by librdkafka's callback.
private final class DeliveryBatch: Sendable {
    private let state: Mutex<(pending: Int, reports: [DeliveryReport?], failure: KafkaError?)>

    init(count: Int) {
        state = Mutex((count, Array(repeating: nil, count: count), nil))
    }

    var isComplete: Bool { state.withLock { $0.pending == 0 } }

    func deliver(index: Int, result: Result<DeliveryReport, KafkaError>) {
        state.withLock { state in
            switch result {
            case .success(let report): state.reports[index] = report
            case .failure(let error): if state.failure == nil { state.failure = error }
            }
            state.pending -= 1
        }
    }

    func reports() throws(KafkaError) -> [DeliveryReport] {
        let (reports, failure) = state.withLock { ($0.reports, $0.failure) }
        if let failure { throw failure }
        return reports.map { $0! }
    }
}

/// Identifies one record of a batch to the delivery callback (its `msg_opaque`).
private final class DeliverySlot: Sendable {
    let batch: DeliveryBatch
    let index: Int

    init(batch: DeliveryBatch, index: Int) {
        self.batch = batch
        self.index = index
    }
}

/// librdkafka calls this from `rd_kafka_poll` once per record.
private let deliveryReportCallback: @convention(c) (
    OpaquePointer?, UnsafePointer<rd_kafka_message_t>?, UnsafeMutableRawPointer?
) -> Void = { _, message, _ in
    guard let message, let opaque = message.pointee._private else { return }
    let slot = Unmanaged<DeliverySlot>.fromOpaque(opaque).takeRetainedValue()
    let topic = message.pointee.rkt.map { String(cString: rd_kafka_topic_name($0)) } ?? "?"
    if message.pointee.err == RD_KAFKA_RESP_ERR_NO_ERROR {
        slot.batch.deliver(index: slot.index, result: .success(DeliveryReport(
            topic: topic, partition: message.pointee.partition, offset: message.pointee.offset)))
    } else {
        slot.batch.deliver(index: slot.index, result: .failure(KafkaError(message.pointee.err, context: "deliver to \(topic)")))
    }
}
