import Kafka
import WireFormat

/// Where a task's chunks come from: the worker's `ChunkCache`, the broker (`BrokerRecords`),
/// or the first and then the second (`CachedChunkSource`).
protocol ChunkSource {
    /// For each of `chunks`, the chunk frame of the record at its location, or nil when this
    /// source does not have it. The caller checks that a frame is the chunk it names.
    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [ChunkFrame?]
}

/// Where a pass-2 task's conditional comes from: the parts of P(y|z) the aggregator published.
protocol ConditionalSource {
    /// The parts at `locations`, in order; nil for a record that is not a conditional part.
    mutating func conditionalParts(at locations: [RecordLocation]) throws -> [ConditionalFrame?]
}

extension ChunkCache: ChunkSource {
    /// The chunks held from pass 1; each is served once.
    mutating func chunks(_ chunks: [LocatedChunk]) -> [ChunkFrame?] {
        chunks.map { take($0.location, id: $0.id) }
    }
}

/// The chunks a cache holds, and the others from a fallback (the broker): a cache changes
/// speed, never results, because a record at a partition and offset never changes.
struct CachedChunkSource<Fallback: ChunkSource>: ChunkSource {
    var cache: ChunkCache
    var fallback: Fallback

    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [ChunkFrame?] {
        var found = cache.chunks(chunks)
        let missing = found.indices.filter { found[$0] == nil }
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
/// first.
struct BrokerRecords: ChunkSource, ConditionalSource {
    let fetcher: KafkaFetcher
    let topics: Topics
    /// Records fetched ahead, by topic and location; each is served once.
    private var prefetched: [String: [RecordLocation: KafkaMessage]] = [:]

    init(fetcher: KafkaFetcher, topics: Topics) {
        self.fetcher = fetcher
        self.topics = topics
    }

    /// Fetches `chunks` and `conditionals` ahead, one request per topic.
    mutating func prefetch(chunks: [RecordLocation], conditionals: [RecordLocation]) throws {
        for (topic, locations) in [(topics.chunks, chunks), (topics.conditionals, conditionals)] where !locations.isEmpty {
            let unique = Array(Set(locations))
            for (location, message) in zip(unique, try fetcher.fetch(topic: topic, locations: unique.map { ($0.partition, $0.offset) })) {
                prefetched[topic, default: [:]][location] = message
            }
        }
    }

    /// Forgets whatever was fetched ahead and not asked for.
    mutating func dropPrefetched() { prefetched = [:] }

    mutating func chunks(_ chunks: [LocatedChunk]) throws -> [ChunkFrame?] {
        try records(of: topics.chunks, at: chunks.map(\.location)).map {
            guard case .chunk(let chunk) = try? Frame.decode($0.value) else { return nil }
            return chunk
        }
    }

    mutating func conditionalParts(at locations: [RecordLocation]) throws -> [ConditionalFrame?] {
        try records(of: topics.conditionals, at: locations).map {
            guard case .conditional(let part) = try? Frame.decode($0.value) else { return nil }
            return part
        }
    }

    /// The records at `locations`: fetched ahead, or fetched now.
    private mutating func records(of topic: String, at locations: [RecordLocation]) throws -> [KafkaMessage] {
        var found = locations.map { prefetched[topic]?.removeValue(forKey: $0) }
        let missing = found.indices.filter { found[$0] == nil }
        if !missing.isEmpty {
            let fetched = try fetcher.fetch(
                topic: topic, locations: missing.map { (locations[$0].partition, locations[$0].offset) })
            for (index, message) in zip(missing, fetched) { found[index] = message }
        }
        return found.map { $0! }
    }
}
