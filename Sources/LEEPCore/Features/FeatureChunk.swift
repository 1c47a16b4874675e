/// A borrowed view of consecutive rows of a run's penultimate-layer features with their target
/// labels: what `FeatureStatistics.add` reads.
///
/// Like `PredictionChunk`, the view does not own its memory (a memory-mapped file or a received
/// Kafka message). The element type is the one the features were stored in; every value is
/// widened exactly to `Double` before it is used.
public struct FeatureChunk: @unchecked Sendable {
    // @unchecked: a view of memory its owner keeps alive and does not mutate while it is read.

    /// The features, `rowCount × width` values row-major, in their stored type.
    public enum Values {
        /// IEEE binary16 features.
        case float16(UnsafeBufferPointer<Float16>)
        /// IEEE binary32 features.
        case float32(UnsafeBufferPointer<Float>)
        /// IEEE binary64 features.
        case float64(UnsafeBufferPointer<Double>)

        /// How many values the view holds.
        public var count: Int {
            switch self {
            case .float16(let values): values.count
            case .float32(let values): values.count
            case .float64(let values): values.count
            }
        }
    }

    /// The rows' features.
    public let values: Values
    /// y, one target label per row.
    public let labels: UnsafeBufferPointer<Int32>
    /// D, the length of each feature row.
    public let width: Int
    /// The index of the first row in the whole data set, so that errors name the real row.
    public let firstRow: Int

    /// The number of rows.
    public var rowCount: Int { labels.count }

    /// Creates a view; `values` must hold `labels.count × width` values.
    public init(values: Values, labels: UnsafeBufferPointer<Int32>, width: Int, firstRow: Int = 0) {
        precondition(width > 0, "a feature row needs at least one value")
        precondition(
            values.count == labels.count * width,
            "\(values.count) feature values do not make \(labels.count) rows of \(width)")
        self.values = values
        self.labels = labels
        self.width = width
        self.firstRow = firstRow
    }

    /// Widens rows `start ..< start + count` (chunk-relative) into `destination`, row-major.
    func widen(rows start: Int, count: Int, into destination: UnsafeMutablePointer<Double>) {
        let first = start * width
        let total = count * width
        switch values {
        case .float16(let source): for k in 0..<total { destination[k] = Double(source[first + k]) }
        case .float32(let source): for k in 0..<total { destination[k] = Double(source[first + k]) }
        case .float64(let source): destination.update(from: source.baseAddress! + first, count: total)
        }
    }

    /// Throws the first row with a NaN or infinite feature, named by its row in the data set.
    public func checkFinite() throws(InvalidRow) {
        try values.checkFinite(width: width, firstRow: firstRow)
    }
}

extension FeatureChunk.Values {
    /// Throws the first row (of `width` values each) holding a NaN or infinite value, named by
    /// its row in the data set: the rows' first is `firstRow`. Labels play no part, so a file
    /// is checked without them.
    public func checkFinite(width: Int, firstRow: Int) throws(InvalidRow) {
        func scan<Scalar: BinaryFloatingPoint>(_ source: UnsafeBufferPointer<Scalar>) -> (Int, Int, Double)? {
            // Summing a row is a vectorisable read; a non-finite value makes the sum non-finite,
            // and only then is the row searched.
            for row in 0..<(source.count / width) {
                let base = row * width
                var sum = 0.0
                for k in base..<(base + width) { sum += Double(source[k]) * 0 }
                guard !sum.isFinite else { continue }
                for column in 0..<width where !source[base + column].isFinite {
                    return (row, column, Double(source[base + column]))
                }
            }
            return nil
        }
        let bad = switch self {
        case .float16(let source): scan(source)
        case .float32(let source): scan(source)
        case .float64(let source): scan(source)
        }
        if let (row, column, value) = bad {
            throw InvalidRow(row: firstRow + row, problem: .featureNotFinite(column: column, value: value))
        }
    }
}

extension FeatureChunk {
    /// Throws the first problem a statistic of D features and Y classes would refuse this chunk
    /// for: rows that are not D values long, a label outside [0, Y), a NaN or infinite feature.
    public func validate(featureWidth: Int, targetClasses: Int) throws(FeatureAddError) {
        guard width == featureWidth else { throw .width(expected: featureWidth, actual: width) }
        for i in 0..<rowCount {
            let label = labels[i]
            guard label >= 0 && Int(label) < targetClasses else {
                throw .row(InvalidRow(
                    row: firstRow + i, problem: .labelOutOfRange(label: Int64(label), targetClasses: targetClasses)))
            }
        }
        do { try checkFinite() } catch { throw .row(error) }
    }
}
