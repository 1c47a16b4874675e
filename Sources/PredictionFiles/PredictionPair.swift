import LEEPCore

/// A predictions file (n×Z softmax outputs) and a labels file (n target labels) that belong
/// together, checked against each other before any row is scored.
///
/// Memory beyond the two mappings is one chunk's labels, so files far larger than RAM work.
public struct PredictionPair: Sendable {
    /// θ: n×Z, float16/32/64, C order.
    public let predictions: NumPyArray
    /// y: n integers of any width.
    public let labels: NumPyArray
    /// Y, given or max label + 1.
    public let targetClasses: Int

    /// n.
    public var sampleCount: Int { predictions.shape[0] }
    /// Z.
    public var sourceClasses: Int { predictions.shape[1] }

    /// Opens both files and checks shapes, lengths and every label; `targetClasses` nil means
    /// max label + 1.
    public init(predictionsPath: String, labelsPath: String, targetClasses: Int? = nil) throws(FileError) {
        try self.init(predictionsPath: predictionsPath, labels: LabelFile(path: labelsPath, targetClasses: targetClasses))
    }

    /// Opens the predictions and checks them against labels already checked.
    public init(predictionsPath: String, labels labelFile: LabelFile) throws(FileError) {
        predictions = try NumPyArray(
            path: predictionsPath, dtypes: [.float16, .float32, .float64],
            expected: "float16, float32 or float64 probabilities")
        labels = labelFile.array
        guard predictions.shape.count == 2 else {
            throw FileError(path: predictionsPath, problem: .wrongDimensions(shape: predictions.shape, expected: 2))
        }
        guard predictions.shape[0] == labels.shape[0] else {
            throw FileError(path: predictionsPath, problem: .lengthMismatch(
                rows: predictions.shape[0], otherFile: labelFile.path, otherRows: labels.shape[0]))
        }
        guard predictions.shape[0] > 0 else { throw FileError(path: predictionsPath, problem: .noRows) }
        guard predictions.shape[1] > 0 else { throw FileError(path: predictionsPath, problem: .noColumns) }
        self.targetClasses = labelFile.targetClasses
    }

    /// Calls `visitor` for consecutive chunks of at most `rowsPerChunk` rows of `rows` (all
    /// rows by default), in order. Inlinable, so that the visitor is specialised for the
    /// element type in the calling module (see `ChunkFrame.visit`).
    @inlinable
    public func forEachChunk<Visitor: ChunkVisitor>(
        rows: Range<Int>? = nil, rowsPerChunk: Int, _ visitor: inout Visitor
    ) throws {
        let rows = rows ?? 0..<sampleCount
        precondition(rows.lowerBound >= 0 && rows.upperBound <= sampleCount, "rows \(rows) outside 0..<\(sampleCount)")
        switch predictions.dtype {
        case .float16: try forEachChunk(of: Float16.self, rows: rows, rowsPerChunk: rowsPerChunk, &visitor)
        case .float32: try forEachChunk(of: Float.self, rows: rows, rowsPerChunk: rowsPerChunk, &visitor)
        case .float64: try forEachChunk(of: Double.self, rows: rows, rowsPerChunk: rowsPerChunk, &visitor)
        default: preconditionFailure("NumPyArray admitted a non-float prediction dtype")
        }
    }

    @inlinable
    func forEachChunk<Scalar: ProbabilityScalar, Visitor: ChunkVisitor>(
        of _: Scalar.Type, rows: Range<Int>, rowsPerChunk: Int, _ visitor: inout Visitor
    ) throws {
        let z = sourceClasses
        let theta = predictions.data.assumingMemoryBound(to: Scalar.self)
        // The only per-run allocation: one chunk's labels, widened to the core's Int32.
        var chunkLabels = [Int32](repeating: 0, count: max(1, min(rowsPerChunk, rows.count)))
        var first = rows.lowerBound
        while first < rows.upperBound {
            let count = min(rowsPerChunk, rows.upperBound - first)
            for offset in 0..<count { chunkLabels[offset] = Int32(labels.label(at: first + offset)) }
            try chunkLabels.withUnsafeBufferPointer { labelBuffer in
                let chunk = PredictionChunk(
                    probabilities: UnsafeBufferPointer(rebasing: theta[(first * z)..<((first + count) * z)]),
                    labels: UnsafeBufferPointer(rebasing: labelBuffer[0..<count]),
                    sourceClasses: z, firstRow: first)
                do {
                    try visitor.visit(chunk)
                } catch let error as InvalidRow {
                    let path = switch error.problem {
                    case .labelOutOfRange, .negativeLabel: labels.path
                    case .notFinite, .negative, .notNormalised, .featureNotFinite: predictions.path
                    }
                    throw FileError(path: path, problem: .invalidRow(error))
                }
            }
            first += count
        }
    }

    /// Rows per chunk so that one chunk of θ is about 256 KiB: validation re-reads it from cache.
    public var defaultRowsPerChunk: Int {
        max(1, (256 << 10) / (sourceClasses * predictions.dtype.size))
    }
}

extension NumPyArray {
    /// The integer at `index` of a 1-D integer array, widened to Int64 (uint64 values above
    /// Int64.max saturate, which keeps them out of range rather than wrapping to small labels).
    @inlinable
    func label(at index: Int) -> Int64 {
        let offset = index * dtype.size
        switch dtype {
        case .int8: return Int64(data.load(fromByteOffset: offset, as: Int8.self))
        case .int16: return Int64(data.loadUnaligned(fromByteOffset: offset, as: Int16.self))
        case .int32: return Int64(data.loadUnaligned(fromByteOffset: offset, as: Int32.self))
        case .int64: return data.loadUnaligned(fromByteOffset: offset, as: Int64.self)
        case .uint8: return Int64(data.load(fromByteOffset: offset, as: UInt8.self))
        case .uint16: return Int64(data.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
        case .uint32: return Int64(data.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
        case .uint64: return Int64(clamping: data.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
        case .float16, .float32, .float64: preconditionFailure("labels are integers")
        }
    }
}
