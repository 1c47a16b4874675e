import CRDKafka
import Synchronization

/// A change of the partitions a group consumer owns.
public enum KafkaRebalance: Sendable {
    /// The group gave these partitions to this consumer.
    case assigned([KafkaTopicPartition])
    /// These partitions are about to go to another member: finish and commit their work now.
    case revoked([KafkaTopicPartition])
}

/// A member of a consumer group: subscribes to topics, polls records, commits offsets only
/// when told to (at-least-once), and reports rebalances before they take effect.
///
/// Rebalance handling runs on the thread that calls `poll`, inside the call, so a handler may
/// commit offsets synchronously before the partitions are given away.
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; the handler is called
/// only from `poll`.
public final class KafkaConsumer: @unchecked Sendable {
    private let client: RDKafkaClient
    private let callbacks: RebalanceCallbacks

    /// Joins `configuration["group.id"]` and subscribes to `topics`. Offsets are committed only
    /// by `commit`; a partition without a committed offset is read from its beginning.
    ///
    /// `onRebalance` runs before a revocation takes effect and after an assignment; its second
    /// argument commits the current positions, which is the last chance to do so for
    /// partitions being revoked.
    public init(
        configuration: KafkaConfiguration, topics: [String],
        onRebalance: @escaping @Sendable (KafkaRebalance, _ commit: () throws(KafkaError) -> Void) -> Void = { _, _ in }
    ) throws(KafkaError) {
        var configuration = configuration
        precondition(configuration["group.id"] != nil, "a group consumer needs group.id")
        configuration["enable.auto.commit"] = "false"
        if configuration["auto.offset.reset"] == nil { configuration["auto.offset.reset"] = "earliest" }
        // Eager assignors: a revocation hands back everything, which keeps handlers simple.
        if configuration["partition.assignment.strategy"] == nil {
            configuration["partition.assignment.strategy"] = "roundrobin"
        }
        let callbacks = RebalanceCallbacks(handler: onRebalance)
        self.callbacks = callbacks
        client = try RDKafkaClient(type: RD_KAFKA_CONSUMER, configuration: configuration) { conf in
            rd_kafka_conf_set_rebalance_cb(conf, rebalanceCallback)
            rd_kafka_conf_set_opaque(conf, Unmanaged.passUnretained(callbacks).toOpaque())
        }
        rd_kafka_poll_set_consumer(client.handle)
        let result = withTopicPartitionList(topics.map { ($0, RD_KAFKA_PARTITION_UA, Int64(RD_KAFKA_OFFSET_INVALID)) }) {
            rd_kafka_subscribe(client.handle, $0)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "subscribe to \(topics)") }
    }

    /// The next record, or nil when none arrived within `timeoutMilliseconds`. Transient
    /// errors (a broker restarting) are retried by librdkafka and not thrown; fatal ones are.
    public func poll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        try message(from: rd_kafka_consumer_poll(client.handle, timeoutMilliseconds))
    }

    /// The message librdkafka returned, nil for none or a transient error; throws a fatal one.
    private func message(from raw: UnsafeMutablePointer<rd_kafka_message_t>?) throws(KafkaError) -> KafkaMessage? {
        guard let raw else { return nil }
        let error = raw.pointee.err
        guard error == RD_KAFKA_RESP_ERR_NO_ERROR else {
            rd_kafka_message_destroy(raw)
            if let fatal = client.fatalError { throw KafkaError(code: fatal.code, message: "consumer: \(fatal)", isFatal: true) }
            return nil
        }
        return KafkaMessage(raw, client: client)
    }

    /// Routes the records of `topics` to a queue of their own, which `pollPriority` reads:
    /// records of these topics no longer wait behind the records of others fetched before them.
    /// Call it before the first `poll`; it applies from the next assignment on. Positions and
    /// commits are unchanged (a record from either queue counts as consumed when returned).
    public func prioritize(_ topics: Set<String>) {
        callbacks.priority.withLock { $0 = PriorityRoute(queue: RDKafkaQueue(client: client), topics: topics) }
    }

    /// The next record of the topics given to `prioritize`, or nil when none arrived within
    /// `timeoutMilliseconds` (or none were given). Rebalances are served by `poll` only, so a
    /// caller must keep calling `poll` too.
    public func pollPriority(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        guard let queue = callbacks.priority.withLock({ $0?.queue }) else { return nil }
        return try message(from: rd_kafka_consume_queue(queue.handle, timeoutMilliseconds))
    }

    /// Commits the position of every assigned partition (the offset after the last record
    /// returned by `poll`), synchronously.
    public func commit() throws(KafkaError) {
        try commitPositions(client.handle)
    }

    /// Commits `offsets` (the offset the group resumes from, per partition), synchronously. A
    /// consumer that keeps state for a window of its input commits the window's start rather
    /// than its position, so a new owner replays exactly what that state needs.
    public func commit(offsets: [KafkaTopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        let result = withTopicPartitionList(offsets.map { ($0.key.topic, $0.key.partition, $0.value) }) {
            rd_kafka_commit(client.handle, $0, 0)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "commit") }
    }

    /// Where lag is counted from.
    public enum LagOrigin: Sendable {
        /// The group's committed offsets: what a replacement would read again if this
        /// consumer stopped now (one request to the group coordinator).
        case committed
        /// This consumer's own read position (no request).
        case position
    }

    /// For each assigned partition, the records between `origin` and the end of the partition.
    /// The ends are the high watermarks of the latest fetches (no request). A partition with no
    /// committed offset or position yet counts from its low watermark.
    public func lag(from origin: LagOrigin, timeoutMilliseconds: Int32 = 2_000) throws(KafkaError) -> [KafkaPartitionLag] {
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let assigned = rd_kafka_assignment(client.handle, &assignment)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { throw KafkaError(assigned, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        guard assignment.pointee.cnt > 0 else { return [] }
        let result = switch origin {
        case .committed: rd_kafka_committed(client.handle, assignment, timeoutMilliseconds)
        case .position: rd_kafka_position(client.handle, assignment)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "offsets for lag") }
        return (0..<Int(assignment.pointee.cnt)).map { index in
            let element = assignment.pointee.elems[index]
            var low: Int64 = 0
            var high: Int64 = 0
            rd_kafka_get_watermark_offsets(client.handle, element.topic, element.partition, &low, &high)
            let from = element.offset >= 0 ? element.offset : low
            return KafkaPartitionLag(
                partition: KafkaTopicPartition(topic: String(cString: element.topic), partition: element.partition),
                records: max(0, high - from))
        }
    }

    /// Asks the cluster for its brokers; nil when one answered within `timeoutMilliseconds`.
    public func probeBroker(timeoutMilliseconds: Int32) -> KafkaError? {
        client.probe(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Leaves the group cleanly (a last rebalance runs first) so partitions move at once
    /// instead of after the session timeout.
    public func close() {
        rd_kafka_consumer_close(client.handle)
    }
}

/// Commits the positions of every assigned partition of `handle`, synchronously.
private func commitPositions(_ handle: OpaquePointer) throws(KafkaError) {
    let result = rd_kafka_commit(handle, nil, 0)
    // Nothing consumed since the last commit is not an error.
    guard result == RD_KAFKA_RESP_ERR_NO_ERROR || result == RD_KAFKA_RESP_ERR__NO_OFFSET else {
        throw KafkaError(result, context: "commit")
    }
}

/// The topics whose partitions are forwarded to a queue of their own (`prioritize`).
private struct PriorityRoute: Sendable {
    let queue: RDKafkaQueue
    let topics: Set<String>

    /// Forwards the partitions of the priority topics among `partitions` to the queue. Done on
    /// every assignment: librdkafka drops a partition's forwarding when it stops fetching it.
    func forward(_ partitions: [KafkaTopicPartition], of handle: OpaquePointer) {
        for partition in partitions where topics.contains(partition.topic) {
            guard let source = rd_kafka_queue_get_partition(handle, partition.topic, partition.partition) else { continue }
            rd_kafka_queue_forward(source, queue.handle)
            rd_kafka_queue_destroy(source)
        }
    }
}

/// The handler a consumer's rebalance callback reaches through librdkafka's opaque pointer.
private final class RebalanceCallbacks: Sendable {
    let handler: @Sendable (KafkaRebalance, _ commit: () throws(KafkaError) -> Void) -> Void
    let priority = Mutex<PriorityRoute?>(nil)

    init(handler: @escaping @Sendable (KafkaRebalance, _ commit: () throws(KafkaError) -> Void) -> Void) {
        self.handler = handler
    }
}

private let rebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { handle, error, partitions, opaque in
    guard let handle, let partitions, let opaque else { return }
    let callbacks = Unmanaged<RebalanceCallbacks>.fromOpaque(opaque).takeUnretainedValue()
    switch error {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        rd_kafka_assign(handle, partitions)
        let assigned = entries(of: partitions)
        callbacks.priority.withLock { $0?.forward(assigned, of: handle) }
        callbacks.handler(.assigned(assigned)) { () throws(KafkaError) in try commitPositions(handle) }
    default:
        // Revocation (or a lost assignment): let the owner finish first, then let go.
        callbacks.handler(.revoked(entries(of: partitions))) { () throws(KafkaError) in try commitPositions(handle) }
        rd_kafka_assign(handle, nil)
    }
}

/// How far a group's committed offset is behind the end of one partition.
public struct KafkaPartitionLag: Sendable, Equatable {
    /// The partition.
    public let partition: KafkaTopicPartition
    /// Records after the committed offset (0 when caught up).
    public let records: Int64
}
