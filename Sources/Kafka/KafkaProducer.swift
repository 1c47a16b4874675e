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

    /// A report of a record of `topic` written at `offset` of `partition`.
    public init(topic: String, partition: Int32, offset: Int64) {
        self.topic = topic
        self.partition = partition
        self.offset = offset
    }
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
        client = try RDKafkaClient(kind: .producer, configuration: configuration)
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
            try enqueue(record, target: RDKafkaDeliveryTarget { batch.deliver(index: index, result: $0) })
        }
        while !batch.isComplete {
            client.poll(timeoutMilliseconds: 50)
        }
        do {
            return try batch.reports()
        } catch {
            // A fatally failed producer (fenced, or its idempotence state lost with a broker's
            // data) fails every record from now on: say so, so that the owner replaces it
            // instead of retrying.
            if let fatal = client.fatalError { throw KafkaError(code: fatal.code, message: "producer: \(fatal)", isFatal: true) }
            // The broker no longer knows this producer's id (it lost its state, or another
            // producer took the id over): every later batch fails the same way.
            if error.requiresNewProducer {
                throw KafkaError(code: error.code, message: "producer must be replaced: \(error)", isFatal: true)
            }
            throw error
        }
    }

    /// Hands one record to librdkafka, waiting for queue space when its queue is full.
    private func enqueue(_ record: OutgoingRecord, target: RDKafkaDeliveryTarget) throws(KafkaError) {
        while try !client.produce(record, target: target) {
            // librdkafka's queue is full: serve delivery reports to make room, then retry.
            client.poll(timeoutMilliseconds: 100)
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
        try client.flush(timeoutMilliseconds: timeoutMilliseconds)
    }
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
