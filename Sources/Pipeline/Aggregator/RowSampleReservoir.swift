import LEEPCore
import WireFormat

/// The rows of a run its workers sampled (`RowSampleFrame`), for the estimate of LEEP while
/// pass 1 streams: at most `capacity` rows and `maxValues` softmax values, those with the
/// smallest keys — so a uniform sample of the rows sent, whatever their order, and the memory
/// of an open run stays bounded (8 MB by default) however large the run.
struct RowSampleReservoir {
    struct Entry {
        let key: UInt64
        let chunk: ChunkID
        let row: LEEPEstimate.Row
    }

    let capacity: Int
    let maxValues: Int
    private(set) var entries: [Entry] = []
    /// Chunks whose sample is in (a chunk's sample is the same whoever sends it).
    private var sampled: Set<ChunkID> = []

    init(capacity: Int = 4_096, maxValues: Int = 1 << 20) {
        self.capacity = capacity
        self.maxValues = maxValues
    }

    /// Adds a chunk's sampled rows, once per chunk.
    mutating func add(_ frame: RowSampleFrame) {
        guard sampled.insert(frame.chunk).inserted else { return }
        let z = frame.sourceClasses
        for (index, row) in frame.rows.enumerated() {
            entries.append(Entry(
                key: RowSampleFrame.key(run: frame.run.id, shard: frame.chunk.shard, row: frame.chunk.firstRow + UInt64(row)),
                chunk: frame.chunk,
                row: LEEPEstimate.Row(label: Int(frame.labels[index]), probabilities: Array(frame.probabilities[(index * z)..<((index + 1) * z)]))))
        }
        let limit = max(1, min(capacity, maxValues / max(z, 1)))
        // Trimmed in batches: sorting on every frame would cost more than the rows.
        if entries.count > limit + limit / 4 {
            entries.sort { $0.key < $1.key }
            entries.removeLast(entries.count - limit)
        }
    }

    /// The sampled rows of `accepted` chunks: rows the joint counts.
    func rows(of accepted: Set<ChunkID>) -> [LEEPEstimate.Row] {
        entries.filter { accepted.contains($0.chunk) }.map(\.row)
    }
}
