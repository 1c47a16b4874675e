/// A chunk's identity: which shard of the run, which rows. A shard published again with the
/// same boundaries yields the same identities, which is how retries are deduplicated.
public struct ChunkID: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// The producer shard, 0..<shardCount.
    public let shard: UInt32
    /// The first row, counted within the shard.
    public let firstRow: UInt64
    /// The number of rows.
    public let rowCount: UInt32

    /// Creates an identity.
    public init(shard: UInt32, firstRow: UInt64, rowCount: UInt32) {
        self.shard = shard
        self.firstRow = firstRow
        self.rowCount = rowCount
    }

    /// Rows must be at least one and end below 2^63, so they fit Swift's `Int` everywhere.
    static func check(firstRow: UInt64, rowCount: UInt32) throws(FrameError) {
        guard rowCount > 0 else { throw .invalidValue(field: "row_count", reason: "must be at least 1") }
        guard firstRow <= UInt64(Int64.max) - UInt64(rowCount) else {
            throw .invalidValue(field: "first_row", reason: "\(firstRow) is too large")
        }
    }

    public static func < (a: ChunkID, b: ChunkID) -> Bool {
        (a.shard, a.firstRow, a.rowCount) < (b.shard, b.firstRow, b.rowCount)
    }

    public var description: String { "shard \(shard) rows \(firstRow)..<\(firstRow + UInt64(rowCount))" }
}

/// Where a record landed: its partition and offset, learnt from a delivery report.
public struct RecordLocation: Hashable, Sendable {
    /// The partition of the topic.
    public let partition: Int32
    /// The offset in the partition.
    public let offset: Int64

    /// Creates a location.
    public init(partition: Int32, offset: Int64) {
        self.partition = partition
        self.offset = offset
    }
}

/// A chunk's identity and where it can be read again.
public struct LocatedChunk: Hashable, Sendable {
    /// Which rows.
    public let id: ChunkID
    /// Where on the chunks topic.
    public let location: RecordLocation

    /// Creates a located chunk.
    public init(id: ChunkID, location: RecordLocation) {
        self.id = id
        self.location = location
    }
}

/// The element type of the probabilities in a chunk.
public enum ProbabilityType: UInt8, Sendable, CaseIterable {
    case float16 = 1, float32 = 2, float64 = 3

    /// Bytes per value.
    public var size: Int {
        switch self {
        case .float16: 2
        case .float32: 4
        case .float64: 8
        }
    }
}

/// FNV-1a, 64 bits: deterministic ids (tasks, partials) that every process computes alike.
/// Swift's `Hasher` is seeded per process, so it cannot serve here.
public struct StableHasher {
    private var state: UInt64 = 0xCBF2_9CE4_8422_2325

    /// A fresh hasher.
    public init() {}

    /// Mixes in the little-endian bytes of `value`.
    public mutating func combine<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { for byte in $0 { mix(byte) } }
    }

    /// Mixes in a string's UTF-8 bytes and its length.
    public mutating func combine(_ text: String) {
        combine(UInt32(text.utf8.count))
        for byte in text.utf8 { mix(byte) }
    }

    /// Mixes in a set of chunk ids, in sorted order, so the order they were listed in does not
    /// matter.
    public mutating func combine(chunkSet chunks: [ChunkID]) {
        for chunk in chunks.sorted() {
            combine(chunk.shard)
            combine(chunk.firstRow)
            combine(chunk.rowCount)
        }
    }

    private mutating func mix(_ byte: UInt8) {
        state ^= UInt64(byte)
        state = state &* 0x0000_0100_0000_01B3
    }

    /// The hash so far.
    public var value: UInt64 { state }
}
