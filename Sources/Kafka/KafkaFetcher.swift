/// What a fetch found at one location.
public enum FetchedRecord: Sendable {
    /// The record.
    case record(KafkaMessage)
    /// The partition has no record there, and will not have one: the offset is past the
    /// partition's end (a record lost with a broker's data, or a location that never existed),
    /// before its start (deleted by retention), or was read past. The text says which.
    case absent(String)
    /// Not found within the fetch's time bound, for no known reason (a slow or unreachable
    /// broker): asking again later may find it.
    case unavailable(String)
}

/// Reads records by (partition, offset) without joining a group: the way workers re-read
/// chunks for pass 2 and repairs, and the conditional a task names.
///
/// A fetch never waits longer than its bound, and tells a record that cannot exist from one
/// that did not come in time: a worker's poll loop must not stall on a record that is gone.
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; use it from one thread.
public final class KafkaFetcher: @unchecked Sendable {
    private let client: RDKafkaClient
    private let timeoutMilliseconds: Int32

    /// Creates a fetcher; a fetch stops looking for its records after `timeoutMilliseconds`.
    public init(configuration: KafkaConfiguration, timeoutMilliseconds: Int32 = 2_000) throws(KafkaError) {
        var configuration = configuration
        // librdkafka wants a group id even for manual assignment; nothing is ever committed.
        if configuration["group.id"] == nil { configuration["group.id"] = "leepstream-fetcher" }
        configuration["enable.auto.commit"] = "false"
        // An offset out of range is an answer (the record is gone), not a reason to read the
        // partition from its start.
        configuration["auto.offset.reset"] = "error"
        // Reaching a partition's end is an answer too: the records asked for past it do not exist.
        configuration["enable.partition.eof"] = "true"
        // Reads by offset want the record now: do not let the broker hold a fetch back waiting
        // for more data (the default waits up to 500 ms per fetch).
        if configuration["fetch.wait.max.ms"] == nil { configuration["fetch.wait.max.ms"] = "10" }
        client = try RDKafkaClient(kind: .consumer, configuration: configuration)
        self.timeoutMilliseconds = timeoutMilliseconds
    }

    /// The records of `topic` at `locations` ((partition, offset) pairs), in the order asked.
    /// Each partition is read forward from the smallest offset asked of it.
    ///
    /// A location past a partition's end is known to be absent only from an answer of the
    /// broker's: when the end the last fetch reported lies before the offsets still missing,
    /// the partition is moved to that end, and the broker's "end of partition" there says the
    /// offsets beyond do not exist (a stale end, say from a broker that is not answering,
    /// leaves them unavailable instead).
    public func fetch(topic: String, locations: [(partition: Int32, offset: Int64)]) throws(KafkaError) -> [FetchedRecord] {
        guard !locations.isEmpty else { return [] }
        var search = FetchSearch(locations: locations)
        try client.assign(search.starts.map { (topic, $0.key, $0.value) })
        defer { client.unassign() }

        let deadline = ContinuousClock.now.advanced(by: .milliseconds(Int(timeoutMilliseconds)))
        while !search.isDone, ContinuousClock.now < deadline {
            switch client.consumerPoll(timeoutMilliseconds: 50) {
            case .nothing: moveToReportedEnds(topic: topic, search: &search)
            case .record(let message): search.found(message)
            case .endOfPartition(let partition, let offset): search.reachedEnd(of: partition, at: offset)
            case .outOfRange(let partition, let text): search.outOfRange(partition, text)
            case .error: break
            }
        }
        return search.results(notFoundText: "not received within \(timeoutMilliseconds) ms")
    }

    /// Moves each partition whose reported end lies before every offset still missing in it to
    /// that end, once: the broker then answers "end of partition" there, or with new records.
    private func moveToReportedEnds(topic: String, search: inout FetchSearch) {
        for partition in search.partitionsToProbe {
            guard let (_, high) = client.reportedWatermarks(topic: topic, partition: partition),
                  high >= 0, search.endLiesBeforeMissing(of: partition, end: high)
            else { continue }
            search.probing(partition)
            client.seek(topic: topic, partition: partition, offset: high, timeoutMilliseconds: 1_000)
        }
    }
}

/// The bookkeeping of one fetch: which locations are found, known absent, or still missing.
struct FetchSearch {
    private struct Location: Hashable {
        let partition: Int32
        let offset: Int64
    }

    private let asked: [Location]
    private var outcomes: [Location: FetchedRecord] = [:]
    private var missing: [Int32: Set<Int64>] = [:]
    private var probed: Set<Int32> = []
    /// Where each partition is first read from.
    let starts: [Int32: Int64]

    init(locations: [(partition: Int32, offset: Int64)]) {
        asked = locations.map { Location(partition: $0.partition, offset: $0.offset) }
        for location in asked { missing[location.partition, default: []].insert(location.offset) }
        starts = missing.mapValues { $0.min()! }
    }

    var isDone: Bool { missing.isEmpty }

    /// Partitions with offsets still missing that were not moved to their end yet.
    var partitionsToProbe: [Int32] { missing.keys.filter { !probed.contains($0) } }

    func endLiesBeforeMissing(of partition: Int32, end: Int64) -> Bool {
        missing[partition].map { $0.min()! >= end } ?? false
    }

    mutating func probing(_ partition: Int32) { probed.insert(partition) }

    /// A record came in: it is one asked for, and the offsets before it in its partition that
    /// are still missing were read past (a partition is read forward).
    mutating func found(_ message: KafkaMessage) {
        let partition = message.partition
        guard var offsets = missing[partition] else { return }
        let location = Location(partition: partition, offset: message.offset)
        if offsets.remove(location.offset) != nil { outcomes[location] = .record(message) }
        for passed in offsets where passed < message.offset {
            offsets.remove(passed)
            outcomes[Location(partition: partition, offset: passed)] = .absent(
                "no record at offset \(passed) of partition \(partition): the partition was read past it")
        }
        missing[partition] = offsets.isEmpty ? nil : offsets
    }

    /// The broker said partition `partition` ends at `end`: the offsets missing from there on
    /// (and any before, which were read past) do not exist.
    mutating func reachedEnd(of partition: Int32, at end: Int64) {
        guard let offsets = missing.removeValue(forKey: partition) else { return }
        for offset in offsets {
            outcomes[Location(partition: partition, offset: offset)] = .absent(
                offset >= end
                    ? "no record at offset \(offset) of partition \(partition): the partition ends at offset \(end)"
                    : "no record at offset \(offset) of partition \(partition): the partition was read past it")
        }
    }

    /// The broker refused the offset: out of the partition's range (deleted, or past its end).
    mutating func outOfRange(_ partition: Int32, _ text: String) {
        guard let offsets = missing.removeValue(forKey: partition) else { return }
        for offset in offsets {
            outcomes[Location(partition: partition, offset: offset)] = .absent(
                "no record at offset \(offset) of partition \(partition): \(text)")
        }
    }

    /// The outcome of every location asked, in order; those still missing are unavailable.
    func results(notFoundText: String) -> [FetchedRecord] {
        asked.map { outcomes[$0] ?? .unavailable("offset \($0.offset) of partition \($0.partition): \(notFoundText)") }
    }
}

/// Reads every partition of one topic from its beginning, without a group: how `leep scores`
/// reads the score topic (every subscriber sees every score, whenever it starts).
///
/// `@unchecked Sendable`: it holds the thread-safe librdkafka handle; use it from one thread.
public final class KafkaTopicReader: @unchecked Sendable {
    private let client: RDKafkaClient

    /// Assigns `partitions` of `topic` (all of them when nil) at their beginning.
    public init(configuration: KafkaConfiguration, topic: String, partitions: [Int32]? = nil) throws(KafkaError) {
        var configuration = configuration
        if configuration["group.id"] == nil { configuration["group.id"] = "leepstream-reader" }
        configuration["enable.auto.commit"] = "false"
        client = try RDKafkaClient(kind: .consumer, configuration: configuration)
        let partitions = if let partitions { partitions } else { Array(0..<(try client.partitionCount(of: topic))) }
        try client.assign(partitions.map { (topic, $0, RDKafkaClient.beginning) })
    }

    /// The next record, or nil when none arrived within `timeoutMilliseconds`.
    public func poll(timeoutMilliseconds: Int32) -> KafkaMessage? {
        guard case .record(let message) = client.consumerPoll(timeoutMilliseconds: timeoutMilliseconds) else { return nil }
        return message
    }
}
