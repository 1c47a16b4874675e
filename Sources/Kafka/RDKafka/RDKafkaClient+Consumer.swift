import CRDKafka
import Synchronization

/// A consumer's calls: subscription and group rebalances, manual assignment, positions,
/// commits and watermarks.
extension RDKafkaClient {
    /// The logical offset "the partition's first record".
    static let beginning = Int64(RD_KAFKA_OFFSET_BEGINNING)

    /// Joins the group (`group.id`) as a member subscribed to `topics`.
    func subscribe(_ topics: [String]) throws(KafkaError) {
        let result = withTopicPartitionList(topics.map { ($0, RD_KAFKA_PARTITION_UA, Int64(RD_KAFKA_OFFSET_INVALID)) }) {
            rd_kafka_subscribe(handle, $0)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "subscribe to \(topics)") }
    }

    /// Reads these partitions from these offsets, without a group (replacing any assignment).
    func assign(_ entries: [(topic: String, partition: Int32, offset: Int64)]) throws(KafkaError) {
        let result = withTopicPartitionList(entries) { rd_kafka_assign(handle, $0) }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else {
            throw KafkaError(result, context: "assign \(Set(entries.map(\.topic)).sorted().joined(separator: ", "))")
        }
    }

    /// Reads from no partition any more.
    func unassign() { rd_kafka_assign(handle, nil) }

    /// Reads `partition` of `topic` from `offset` on, waiting up to `timeoutMilliseconds`.
    func seek(topic: String, partition: Int32, offset: Int64, timeoutMilliseconds: Int32) {
        withTopicPartitionList([(topic, partition, offset)]) { list in
            if let error = rd_kafka_seek_partitions(handle, list, timeoutMilliseconds) { rd_kafka_error_destroy(error) }
        }
    }

    /// The low and high watermarks of a partition as the latest fetch reported them (no
    /// request); nil when none has yet.
    func reportedWatermarks(topic: String, partition: Int32) -> (low: Int64, high: Int64)? {
        var low: Int64 = 0
        var high: Int64 = 0
        guard rd_kafka_get_watermark_offsets(handle, topic, partition, &low, &high) == RD_KAFKA_RESP_ERR_NO_ERROR else {
            return nil
        }
        return (low, high)
    }

    /// The next record of `queue` (a queue of this client's).
    func consume(_ queue: RDKafkaQueue, timeoutMilliseconds: Int32) -> RDKafkaPolled {
        polled(rd_kafka_consume_queue(queue.handle, timeoutMilliseconds))
    }

    /// Commits the positions of every assigned partition, synchronously; nothing consumed since
    /// the last commit is not an error.
    func commitPositions() throws(KafkaError) { try commitAssignedPositions(handle) }

    /// Commits these offsets, synchronously.
    func commit(_ offsets: [KafkaTopicPartition: Int64]) throws(KafkaError) {
        let result = withTopicPartitionList(offsets.map { ($0.key.topic, $0.key.partition, $0.value) }) {
            rd_kafka_commit(handle, $0, 0)
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "commit") }
    }

    /// For each assigned partition: the group's committed offset (`committed`, one request) or
    /// this consumer's position, negative when there is none, and the reported watermarks.
    func assignedOffsets(
        committed: Bool, timeoutMilliseconds: Int32
    ) throws(KafkaError) -> [(partition: KafkaTopicPartition, offset: Int64, low: Int64, high: Int64)] {
        var assignment: UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?
        let assigned = rd_kafka_assignment(handle, &assignment)
        guard assigned == RD_KAFKA_RESP_ERR_NO_ERROR, let assignment else { throw KafkaError(assigned, context: "assignment") }
        defer { rd_kafka_topic_partition_list_destroy(assignment) }
        guard assignment.pointee.cnt > 0 else { return [] }
        let result = committed
            ? rd_kafka_committed(handle, assignment, timeoutMilliseconds) : rd_kafka_position(handle, assignment)
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "offsets for lag") }
        return (0..<Int(assignment.pointee.cnt)).map { index in
            let element = assignment.pointee.elems[index]
            let topic = String(cString: element.topic)
            let (low, high) = reportedWatermarks(topic: topic, partition: element.partition) ?? (0, 0)
            return (KafkaTopicPartition(topic: topic, partition: element.partition), element.offset, low, high)
        }
    }

    /// The offsets `partitions` of `topic` have committed in this client's group (`group.id`),
    /// without joining it; partitions never committed are left out.
    func committedOffsets(topic: String, partitions: Int32, timeoutMilliseconds: Int32) throws(KafkaError) -> [Int32: Int64] {
        var result = RD_KAFKA_RESP_ERR_NO_ERROR
        let offsets = withTopicPartitionList((0..<partitions).map { (topic, $0, Int64(RD_KAFKA_OFFSET_INVALID)) }) { list in
            result = rd_kafka_committed(handle, list, timeoutMilliseconds)
            var offsets: [Int32: Int64] = [:]
            for index in 0..<Int(list.pointee.cnt) where list.pointee.elems[index].offset >= 0 {
                offsets[list.pointee.elems[index].partition] = list.pointee.elems[index].offset
            }
            return offsets
        }
        guard result == RD_KAFKA_RESP_ERR_NO_ERROR else { throw KafkaError(result, context: "committed offsets of the group") }
        return offsets
    }

    /// Leaves the group cleanly (a last rebalance runs first).
    func closeConsumer() { rd_kafka_consumer_close(handle) }
}

/// Where a consumer's rebalances go: its handler, called after an assignment takes effect and
/// before a revocation does, with a function that commits the current positions; and the
/// topics whose partitions are forwarded to a queue of their own (`prioritize`).
final class RDKafkaRebalanceTarget: Sendable {
    let handler: @Sendable (KafkaRebalance, _ commit: () throws(KafkaError) -> Void) -> Void
    let priority = Mutex<RDKafkaPriorityRoute?>(nil)

    init(handler: @escaping @Sendable (KafkaRebalance, _ commit: () throws(KafkaError) -> Void) -> Void) {
        self.handler = handler
    }
}

/// The topics whose partitions are forwarded to a queue of their own.
struct RDKafkaPriorityRoute: Sendable {
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

/// Commits the positions of every assigned partition of `handle`, synchronously (from the
/// rebalance callback, which has the handle and not the client).
private func commitAssignedPositions(_ handle: OpaquePointer) throws(KafkaError) {
    let result = rd_kafka_commit(handle, nil, 0)
    guard result == RD_KAFKA_RESP_ERR_NO_ERROR || result == RD_KAFKA_RESP_ERR__NO_OFFSET else {
        throw KafkaError(result, context: "commit")
    }
}

let rebalanceCallback: @convention(c) (
    OpaquePointer?, rd_kafka_resp_err_t, UnsafeMutablePointer<rd_kafka_topic_partition_list_t>?, UnsafeMutableRawPointer?
) -> Void = { handle, error, partitions, opaque in
    guard let handle, let partitions, let opaque else { return }
    let target = Unmanaged<RDKafkaRebalanceTarget>.fromOpaque(opaque).takeUnretainedValue()
    switch error {
    case RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS:
        rd_kafka_assign(handle, partitions)
        let assigned = entries(of: partitions)
        target.priority.withLock { $0?.forward(assigned, of: handle) }
        target.handler(.assigned(assigned)) { () throws(KafkaError) in try commitAssignedPositions(handle) }
    default:
        // Revocation (or a lost assignment): let the owner finish first, then let go.
        target.handler(.revoked(entries(of: partitions))) { () throws(KafkaError) in try commitAssignedPositions(handle) }
        rd_kafka_assign(handle, nil)
    }
}
