/// A borrowed view of consecutive rows of one run: softmax outputs θ and target labels y.
///
/// The view does not own its memory: the buffers must stay valid for as long as the chunk is
/// used (they usually point into a memory-mapped file or a received Kafka message).
public struct PredictionChunk<Scalar: ProbabilityScalar> {
    /// θ, `rowCount × sourceClasses` values, row-major (C order).
    public let probabilities: UnsafeBufferPointer<Scalar>
    /// y, one target label per row.
    public let labels: UnsafeBufferPointer<Int32>
    /// Z, the number of source classes (the length of each row of θ).
    public let sourceClasses: Int
    /// The index of the first row in the whole data set, so that errors name the real row.
    public let firstRow: Int

    /// The number of rows, n of this chunk.
    public var rowCount: Int { labels.count }

    /// Creates a view; the number of probabilities must be `labels.count × sourceClasses`.
    public init(
        probabilities: UnsafeBufferPointer<Scalar>,
        labels: UnsafeBufferPointer<Int32>,
        sourceClasses: Int,
        firstRow: Int = 0
    ) {
        precondition(sourceClasses > 0, "a chunk needs at least one source class")
        precondition(
            probabilities.count == labels.count * sourceClasses,
            "\(probabilities.count) probabilities do not make \(labels.count) rows of \(sourceClasses)"
        )
        self.probabilities = probabilities
        self.labels = labels
        self.sourceClasses = sourceClasses
        self.firstRow = firstRow
    }

    /// A pointer to the first value of row `index` (chunk-relative).
    @inlinable @inline(__always)
    func row(_ index: Int) -> UnsafePointer<Scalar> {
        probabilities.baseAddress! + index * sourceClasses
    }
}
