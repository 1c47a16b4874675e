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
struct BrokerRecords: ChunkSource, ConditionalSource {
    let fetcher: KafkaFetcher
    let topics: Topics

    func chunks(_ chunks: [LocatedChunk]) throws -> [ChunkFrame?] {
        try fetcher.fetch(topic: topics.chunks, locations: chunks.map { ($0.location.partition, $0.location.offset) }).map {
            guard case .chunk(let chunk) = try? Frame.decode($0.value) else { return nil }
            return chunk
        }
    }

    func conditionalParts(at locations: [RecordLocation]) throws -> [ConditionalFrame?] {
        try fetcher.fetch(topic: topics.conditionals, locations: locations.map { ($0.partition, $0.offset) }).map {
            guard case .conditional(let part) = try? Frame.decode($0.value) else { return nil }
            return part
        }
    }
}
