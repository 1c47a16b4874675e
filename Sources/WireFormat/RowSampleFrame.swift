/// Kind 10: a few rows of one chunk, kept verbatim, that a worker sends beside the chunk's
/// pass-1 sums so that the aggregator can estimate the run's LEEP while pass 1 streams
/// (`LEEPEstimate`). Which rows: those of the chunk with the smallest `RowSampleFrame.key`s, a
/// share the worker chooses (`--row-sample-rate`); the keys hash the run and the row, so the
/// same rows are chosen whoever reads the chunk and however often.
public struct RowSampleFrame: Sendable, Equatable {
    /// The run, as the chunk names it.
    public let run: RunIdentity
    /// The chunk the rows come from.
    public let chunk: ChunkID
    /// Z, the softmax outputs a row.
    public let sourceClasses: Int
    /// Each sampled row's index within the chunk, strictly increasing, below its row count.
    public let rows: [UInt32]
    /// Each sampled row's target label.
    public let labels: [Int32]
    /// The rows' softmax outputs widened to float64, row after row (`rows.count` × Z).
    public let probabilities: [Double]

    /// Creates a sample; the worker's rows are valid (checked when the chunk was added).
    public init(run: RunIdentity, chunk: ChunkID, sourceClasses: Int, rows: [UInt32], labels: [Int32], probabilities: [Double]) {
        precondition(rows.count == labels.count && probabilities.count == rows.count * sourceClasses)
        self.run = run
        self.chunk = chunk
        self.sourceClasses = sourceClasses
        self.rows = rows
        self.labels = labels
        self.probabilities = probabilities
    }

    /// The sampling key of row `row` (counted within its shard) of shard `shard` of `run`:
    /// a 64-bit hash, uniform and independent of the chunking.
    public static func key(run: String, shard: UInt32, row: UInt64) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(run)
        hasher.combine(shard)
        hasher.combine(row)
        // splitmix64's finaliser: FNV-1a alone leaves neighbouring rows' keys close.
        var mixed = hasher.value
        mixed = (mixed ^ (mixed >> 30)) &* 0xBF58_476D_1CE4_E5B9
        mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
        return mixed ^ (mixed >> 31)
    }

    /// How many of a chunk's `rowCount` rows a sample at `rate` keeps: ⌈rowCount × rate⌉, at
    /// least 1 for any positive rate, none at rate 0.
    public static func sampleSize(rowCount: Int, rate: Double) -> Int {
        guard rate > 0 else { return 0 }
        return min(rowCount, max(1, Int((Double(rowCount) * rate).rounded(.up))))
    }

    /// The indices, within a chunk of `chunk.rowCount` rows, of the `count` rows with the
    /// smallest keys, in increasing order.
    public static func sampledRows(run: String, chunk: ChunkID, count: Int) -> [UInt32] {
        let keyed = (0..<UInt32(chunk.rowCount)).map { ($0, key(run: run, shard: chunk.shard, row: chunk.firstRow + UInt64($0))) }
        return keyed.sorted { $0.1 < $1.1 }.prefix(count).map(\.0).sorted()
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .rowSample, capacity: 96 + run.id.utf8.count * 3 + rows.count * (8 + 8 * sourceClasses))
        writer.write(run)
        writer.write(chunk)
        writer.write(UInt32(sourceClasses))
        writer.write(UInt32(rows.count))
        for row in rows { writer.write(row) }
        for label in labels { writer.write(label) }
        writer.alignTo8()
        for value in probabilities { writer.write(value) }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunIdentity()
        chunk = try reader.readChunkID()
        sourceClasses = try reader.readClassCount("source_classes")
        let count = try reader.readCount("row_count", elementSize: 8 + 8 * sourceClasses)
        guard count >= 1, count <= Int(chunk.rowCount) else {
            throw .invalidValue(field: "row_count", reason: "\(count) rows of a chunk of \(chunk.rowCount)")
        }
        guard count * sourceClasses <= WireFormat.maxCells else {
            throw .invalidValue(field: "row_count", reason: "\(count) rows × \(sourceClasses) classes exceed \(WireFormat.maxCells) values")
        }
        rows = try reader.readArray(UInt32.self, count: count, "rows")
        for (index, row) in rows.enumerated() where row >= chunk.rowCount || (index > 0 && row <= rows[index - 1]) {
            throw .invalidValue(field: "rows", reason: "entry \(index) (\(row)) is not increasing and below \(chunk.rowCount)")
        }
        labels = try reader.readArray(Int32.self, count: count, "labels")
        if let index = labels.firstIndex(where: { $0 < 0 }) {
            throw .invalidValue(field: "labels", reason: "entry \(index) is \(labels[index])")
        }
        try reader.skipPadding()
        guard reader.remaining == count * sourceClasses * 8 else {
            throw .invalidValue(
                field: "probabilities", reason: "\(count) rows of \(sourceClasses) need \(count * sourceClasses * 8) bytes, \(reader.remaining) left")
        }
        probabilities = try reader.readDoubles(count: count * sourceClasses, "probabilities")
        if let index = probabilities.firstIndex(where: { !$0.isFinite || $0 < 0 }) {
            throw .invalidValue(field: "probabilities", reason: "value \(index) is \(probabilities[index])")
        }
    }
}
