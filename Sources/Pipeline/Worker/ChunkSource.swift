import Kafka
import WireFormat

/// What a source says of one record a task names.
enum Lookup<Frame> {
    /// The record, decoded as the kind of frame asked for.
    case found(Frame)
    /// This source does not hold it (a cache): ask the next.
    case notHeld
    /// There is no such frame at that location, and there will not be: the text says why.
    case absent(String)
}

/// Where a task's chunks come from: the worker's `ChunkCache`, the broker (`BrokerRecords`),
/// or the first and then the second (`CachedChunkSource`).
protocol ChunkSource {
    /// For each of `chunks`, what the source has at its location. The caller checks that a
    /// frame found is the chunk it names. Throws when the source cannot answer now.
    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [Lookup<ChunkFrame>]
}

/// Where a pass-2 task's conditional comes from: the parts of P(y|z) the aggregator published.
protocol ConditionalSource {
    /// The parts at `locations`, in order. Throws when the source cannot answer now.
    mutating func conditionalParts(at locations: [RecordLocation]) throws -> [Lookup<ConditionalFrame>]
}

extension ChunkCache: ChunkSource {
    /// The chunks held from pass 1; each is served once.
    mutating func chunks(_ chunks: [LocatedChunk]) -> [Lookup<ChunkFrame>] {
        chunks.map { take($0.location, id: $0.id).map(Lookup.found) ?? .notHeld }
    }
}

/// The chunks a cache holds, and the others from a fallback (the broker): a cache changes
/// speed, never results, because a record at a partition and offset never changes.
struct CachedChunkSource<Fallback: ChunkSource>: ChunkSource {
    var cache: ChunkCache
    var fallback: Fallback

    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [Lookup<ChunkFrame>] {
        var found = cache.chunks(chunks)
        let missing = found.indices.filter { if case .notHeld = found[$0] { true } else { false } }
        guard !missing.isEmpty else { return found }
        for (index, chunk) in zip(missing, try fallback.chunks(missing.map { chunks[$0] })) {
            found[index] = chunk
        }
        return found
    }
}

/// Records read back from the broker by partition and offset: chunks for repairs and pass 2,
/// and the conditional parts a task names.
///
/// `prefetch` reads what a whole round of tasks needs in one fetch per topic, so many small runs
/// do not each pay for a fetch of their own (assigning partitions and waiting for a reply costs
/// the same for one record as for hundreds); what a task asks for later is served from there
/// first — including what the prefetch found absent or could not get in time, so that a round
/// waits for the fetcher's bound once at most, not once per task.
struct BrokerRecords: ChunkSource, ConditionalSource {
    let fetcher: KafkaFetcher
    let topics: Topics
    /// Outcomes fetched ahead, by topic and location; each is served once.
    private var prefetched: [String: [RecordLocation: FetchedRecord]] = [:]

    init(fetcher: KafkaFetcher, topics: Topics) {
        self.fetcher = fetcher
        self.topics = topics
    }

    /// Fetches `chunks` and `conditionals` ahead, one request per topic.
    mutating func prefetch(chunks: [RecordLocation], conditionals: [RecordLocation]) throws {
        for (topic, locations) in [(topics.chunks, chunks), (topics.conditionals, conditionals)] where !locations.isEmpty {
            let unique = Array(Set(locations))
            for (location, outcome) in zip(unique, try fetcher.fetch(topic: topic, locations: unique.map { ($0.partition, $0.offset) })) {
                prefetched[topic, default: [:]][location] = outcome
            }
        }
    }

    /// Forgets whatever was fetched ahead and not asked for.
    mutating func dropPrefetched() { prefetched = [:] }

    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [Lookup<ChunkFrame>] {
        try frames(of: topics.chunks, at: chunks.map(\.location)) {
            if case .chunk(let chunk) = $0 { chunk } else { nil }
        }
    }

    mutating func conditionalParts(at locations: [RecordLocation]) throws -> [Lookup<ConditionalFrame>] {
        try frames(of: topics.conditionals, at: locations) {
            if case .conditional(let part) = $0 { part } else { nil }
        }
    }

    /// The frames at `locations`, as `kind` picks them out of a decoded record. A record that
    /// is not such a frame is absent as one; a record not received in time throws.
    private mutating func frames<Wanted>(
        of topic: String, at locations: [RecordLocation], _ kind: (Frame) -> Wanted?
    ) throws -> [Lookup<Wanted>] {
        try records(of: topic, at: locations).enumerated().map { index, outcome in
            let location = locations[index]
            switch outcome {
            case .record(let message):
                guard let frame = try? Frame.decode(message.value), let wanted = kind(frame) else {
                    return .absent("the record at \(topic) partition \(location.partition) offset \(location.offset) "
                        + "is not the frame named there")
                }
                return .found(wanted)
            case .absent(let why):
                return .absent("\(topic): \(why)")
            case .unavailable(let why):
                throw TaskError("\(topic): \(why)")
            }
        }
    }

    /// What the broker has at `locations`: fetched ahead, or fetched now.
    private mutating func records(of topic: String, at locations: [RecordLocation]) throws -> [FetchedRecord] {
        var found = locations.map { prefetched[topic]?.removeValue(forKey: $0) }
        let missing = found.indices.filter { found[$0] == nil }
        if !missing.isEmpty {
            let fetched = try fetcher.fetch(
                topic: topic, locations: missing.map { (locations[$0].partition, locations[$0].offset) })
            for (index, outcome) in zip(missing, fetched) { found[index] = outcome }
        }
        return found.map { $0! }
    }
}
