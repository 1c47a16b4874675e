import DequeModule
import WireFormat

/// Chunks this worker consumed in pass 1, kept in memory for the run's pass 2.
///
/// Pass 2 needs every chunk again. Without this cache the worker fetches them back from the
/// broker — a second full read of the run's bytes after inference has ended, which is most of
/// what a user waits for. The aggregator sends each task to the partition of the tasks topic
/// numbered like its chunks' partition, and workers take both topics with the range assignor,
/// so the task usually reaches the worker that still holds its chunks.
///
/// Only a shortcut: a record at a partition and offset never changes, so a chunk served from
/// here is the chunk a fetch would return. Bounded by bytes; the oldest chunks are evicted
/// first, and a chunk leaves when pass 2 takes it. A miss (evicted, or the task went to another
/// worker after a rebalance) is fetched as before.
struct ChunkCache {
    /// The most record bytes held at once; 0 disables the cache.
    let capacityBytes: Int
    private var entries: [RecordLocation: (chunk: ChunkFrame, bytes: Int)] = [:]
    /// Insertion order, for eviction; may name locations already taken.
    private var order: Deque<RecordLocation> = []
    /// Record bytes held now.
    private(set) var bytes = 0
    /// Lookups served and missed, for the logs and metrics.
    private(set) var hits = 0
    private(set) var misses = 0

    init(capacityBytes: Int) {
        self.capacityBytes = capacityBytes
    }

    /// Keeps `chunk`, read from `location` as a record of `bytes` bytes.
    mutating func insert(_ chunk: ChunkFrame, at location: RecordLocation, bytes recordBytes: Int) {
        guard recordBytes <= capacityBytes, entries[location] == nil else { return }
        entries[location] = (chunk, recordBytes)
        order.append(location)
        bytes += recordBytes
        while bytes > capacityBytes, let oldest = order.popFirst() {
            if let evicted = entries.removeValue(forKey: oldest) { bytes -= evicted.bytes }
        }
        // Locations taken earlier stay in `order` until they reach its front; keep it bounded.
        if order.count > 2 * entries.count + 1024 {
            order = Deque(order.filter { entries[$0] != nil })
        }
    }

    /// Removes and returns the chunk read from `location`, if it is here and is `id`.
    /// True when the record at `location` is held (without counting a hit or a miss).
    func holds(_ location: RecordLocation) -> Bool { entries[location] != nil }

    mutating func take(_ location: RecordLocation, id: ChunkID) -> ChunkFrame? {
        guard let entry = entries[location], entry.chunk.id == id else {
            misses += 1
            return nil
        }
        entries.removeValue(forKey: location)
        bytes -= entry.bytes
        hits += 1
        return entry.chunk
    }
}
