/// Gathers the rows of many small feature chunks into blocks of float64 rows, so that the
/// scatter statistics see hundreds of rows of a class per BLAS call.
///
/// Why: a chunk is at most one message (1 MB), about 120 rows at D = 2,048 — a dozen per class
/// at Y = 10 — and each per-class `dsyrk` or `dsyr` reads and writes a whole D×D triangle
/// (16 MB there) whatever the number of rows, so statistics added chunk by chunk are bound by
/// memory traffic, not arithmetic. Widening to float64 is exact, so a gathered block holds the
/// same values as its chunks; only the order of the sums changes.
public struct FeatureRowGatherer: Sendable {
    /// D.
    public let featureWidth: Int
    /// The rows a block holds before it is handed on.
    public let blockRows: Int
    private var values: [Double] = []
    private var labels: [Int32] = []

    /// The rows gathered and not yet handed on.
    public var rowCount: Int { labels.count }

    /// Bytes the gathered rows take.
    public var byteCount: Int { values.count * MemoryLayout<Double>.stride + labels.count * MemoryLayout<Int32>.stride }

    /// A gatherer of rows of D features, handing on blocks of at most `blockBytes` of float64
    /// values (and at most 4,096 rows: past that a block gains nothing).
    public init(featureWidth: Int, blockBytes: Int = 16 << 20) {
        precondition(featureWidth > 0)
        self.featureWidth = featureWidth
        blockRows = max(1, min(4_096, blockBytes / (featureWidth * MemoryLayout<Double>.stride)))
    }

    /// Appends the rows of `chunk` (of this D), calling `body` with each block that fills.
    public mutating func append(_ chunk: FeatureChunk, _ body: (FeatureChunk) -> Void) {
        precondition(chunk.width == featureWidth, "rows of \(chunk.width) features gathered with \(featureWidth)")
        var start = 0
        while start < chunk.rowCount {
            let count = min(blockRows - rowCount, chunk.rowCount - start)
            let end = values.count
            values.append(contentsOf: repeatElement(0, count: count * featureWidth))
            values.withUnsafeMutableBufferPointer { chunk.widen(rows: start, count: count, into: $0.baseAddress! + end) }
            labels.append(contentsOf: chunk.labels[start..<(start + count)])
            start += count
            if rowCount == blockRows { drain(body) }
        }
    }

    /// Hands the rows gathered so far to `body` as one block (nothing when there are none).
    public mutating func drain(_ body: (FeatureChunk) -> Void) {
        guard rowCount > 0 else { return }
        values.withUnsafeBufferPointer { values in
            labels.withUnsafeBufferPointer { labels in
                body(FeatureChunk(values: .float64(values), labels: labels, width: featureWidth))
            }
        }
        values.removeAll(keepingCapacity: true)
        labels.removeAll(keepingCapacity: true)
    }
}
