
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
    private let rebalance: RDKafkaRebalanceTarget

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
        let rebalance = RDKafkaRebalanceTarget(handler: onRebalance)
        self.rebalance = rebalance
        client = try RDKafkaClient(kind: .consumer, configuration: configuration, rebalance: rebalance)
        try client.subscribe(topics)
    }

    /// The next record, or nil when none arrived within `timeoutMilliseconds`. Transient
    /// errors (a broker restarting) are retried by librdkafka and not thrown; fatal ones are.
    public func poll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        try record(client.consumerPoll(timeoutMilliseconds: timeoutMilliseconds))
    }

    /// The record polled, nil for none or a transient error; throws a fatal one.
    private func record(_ polled: RDKafkaPolled) throws(KafkaError) -> KafkaMessage? {
        switch polled {
        case .nothing: return nil
        case .record(let message): return message
        case .endOfPartition, .outOfRange, .error:
            if let fatal = client.fatalError { throw KafkaError(code: fatal.code, message: "consumer: \(fatal)", isFatal: true) }
            return nil
        }
    }

    /// Routes the records of `topics` to a queue of their own, which `pollPriority` reads:
    /// records of these topics no longer wait behind the records of others fetched before them.
    /// Call it before the first `poll`; it applies from the next assignment on. Positions and
    /// commits are unchanged (a record from either queue counts as consumed when returned).
    public func prioritize(_ topics: Set<String>) {
        rebalance.priority.withLock { $0 = RDKafkaPriorityRoute(queue: RDKafkaQueue(client: client), topics: topics) }
    }

    /// The next record of the topics given to `prioritize`, or nil when none arrived within
    /// `timeoutMilliseconds` (or none were given). Rebalances are served by `poll` only, so a
    /// caller must keep calling `poll` too.
    public func pollPriority(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage? {
        guard let queue = rebalance.priority.withLock({ $0?.queue }) else { return nil }
        return try record(client.consume(queue, timeoutMilliseconds: timeoutMilliseconds))
    }

    /// Commits the position of every assigned partition (the offset after the last record
    /// returned by `poll`), synchronously.
    public func commit() throws(KafkaError) {
        try client.commitPositions()
    }

    /// Commits `offsets` (the offset the group resumes from, per partition), synchronously. A
    /// consumer that keeps state for a window of its input commits the window's start rather
    /// than its position, so a new owner replays exactly what that state needs.
    public func commit(offsets: [KafkaTopicPartition: Int64]) throws(KafkaError) {
        guard !offsets.isEmpty else { return }
        try client.commit(offsets)
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
        try client.assignedOffsets(committed: origin == .committed, timeoutMilliseconds: timeoutMilliseconds).map { entry in
            let from = entry.offset >= 0 ? entry.offset : entry.low
            return KafkaPartitionLag(partition: entry.partition, records: max(0, entry.high - from))
        }
    }

    /// Asks the cluster for its brokers; nil when one answered within `timeoutMilliseconds`.
    public func probeBroker(timeoutMilliseconds: Int32) -> KafkaError? {
        client.probe(timeoutMilliseconds: timeoutMilliseconds)
    }

    /// Leaves the group cleanly (a last rebalance runs first) so partitions move at once
    /// instead of after the session timeout.
    public func close() {
        client.closeConsumer()
    }
}

/// How far a group's committed offset is behind the end of one partition.
public struct KafkaPartitionLag: Sendable, Equatable {
    /// The partition.
    public let partition: KafkaTopicPartition
    /// Records after the committed offset (0 when caught up).
    public let records: Int64
}
