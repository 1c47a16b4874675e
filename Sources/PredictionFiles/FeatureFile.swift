import LEEPCore

/// A features file — n×D penultimate-layer features of the source model, float16/32/64, C
/// order — checked against its labels: the input of LogME and the H-scores.
public struct FeatureFile: Sendable {
    /// The memory-mapped features.
    public let features: NumPyArray
    /// The labels they go with, already checked.
    public let labels: LabelFile

    /// n.
    public var sampleCount: Int { features.shape[0] }
    /// D.
    public var width: Int { features.shape[1] }

    /// Opens the features and checks their shape against the labels'.
    public init(path: String, labels: LabelFile) throws(FileError) {
        features = try NumPyArray(
            path: path, dtypes: [.float16, .float32, .float64], expected: "float16, float32 or float64 features")
        self.labels = labels
        guard features.shape.count == 2 else {
            throw FileError(path: path, problem: .wrongDimensions(shape: features.shape, expected: 2))
        }
        guard features.shape[0] == labels.count else {
            throw FileError(path: path, problem: .lengthMismatch(
                rows: features.shape[0], otherFile: labels.path, otherRows: labels.count))
        }
        guard features.shape[0] > 0 else { throw FileError(path: path, problem: .noRows) }
        guard features.shape[1] > 0 else { throw FileError(path: path, problem: .noFeatures) }
    }

    /// The feature statistics of all rows, in one pass over the mapping on `threads` threads
    /// (one contiguous slice each, merged in row order). Throws the first non-finite feature
    /// in row order, naming the file.
    public func statistics(threads: Int = 1, rowsPerChunk: Int = 4096) throws(FileError) -> FeatureStatistics {
        let slices = FileScorer.slices(of: sampleCount, threads: threads, rowsPerChunk: rowsPerChunk)
        if slices.count > 1 { MatrixProducts.useCallingThreadOnly() }
        do {
            let parts = try FileScorer.inParallel(slices) { slice in
                try statistics(of: slice, rowsPerChunk: rowsPerChunk)
            }
            var merged = parts[0]
            for part in parts.dropFirst() { try merged.merge(part) }
            return merged
        } catch let error as FileError {
            throw error
        } catch {
            preconditionFailure("one file's slices share D and Y: \(error)")
        }
    }

    /// Throws the first non-finite feature in row order, naming the file (what a producer
    /// checks before it publishes anything).
    public func checkFinite(rowsPerChunk: Int = 4096) throws(FileError) {
        var first = 0
        while first < sampleCount {
            let count = min(rowsPerChunk, sampleCount - first)
            do {
                try values(rows: first..<(first + count)).checkFinite(width: width, firstRow: first)
            } catch {
                throw FileError(path: features.path, problem: .invalidRow(error))
            }
            first += count
        }
    }

    /// The bytes of `rows` as they lie in the file (row-major, the file's element type).
    public func bytes(rows: Range<Int>) -> UnsafeRawBufferPointer {
        let rowBytes = width * features.dtype.size
        return UnsafeRawBufferPointer(rebasing: features.data[(rows.lowerBound * rowBytes)..<(rows.upperBound * rowBytes)])
    }

    /// The statistics of `rows`, chunk by chunk.
    func statistics(of rows: Range<Int>, rowsPerChunk: Int) throws(FileError) -> FeatureStatistics {
        var statistics = FeatureStatistics(featureWidth: width, targetClasses: labels.targetClasses)
        var chunkLabels = [Int32](repeating: 0, count: max(1, min(rowsPerChunk, rows.count)))
        var first = rows.lowerBound
        while first < rows.upperBound {
            let count = min(rowsPerChunk, rows.upperBound - first)
            let problem: FeatureAddError? = chunkLabels.withUnsafeMutableBufferPointer { buffer in
                labels.copy(rows: first..<(first + count), into: buffer)
                let chunk = FeatureChunk(
                    values: values(rows: first..<(first + count)),
                    labels: UnsafeBufferPointer(rebasing: buffer[0..<count]), width: width, firstRow: first)
                do throws(FeatureAddError) {
                    try statistics.add(chunk)
                    return nil
                } catch {
                    return error
                }
            }
            switch problem {
            case nil: break
            case .row(let invalid): throw FileError(path: features.path, problem: .invalidRow(invalid))
            case .width(let expected, let actual): preconditionFailure("a file's rows are all \(expected) wide, not \(actual)")
            }
            first += count
        }
        return statistics
    }

    /// A typed view of `rows` of the mapping.
    func values(rows: Range<Int>) -> FeatureChunk.Values {
        let start = rows.lowerBound * width
        let count = rows.count * width
        switch features.dtype {
        case .float16:
            return .float16(UnsafeBufferPointer(start: features.data.assumingMemoryBound(to: Float16.self).baseAddress! + start, count: count))
        case .float32:
            return .float32(UnsafeBufferPointer(start: features.data.assumingMemoryBound(to: Float.self).baseAddress! + start, count: count))
        case .float64:
            return .float64(UnsafeBufferPointer(start: features.data.assumingMemoryBound(to: Double.self).baseAddress! + start, count: count))
        default:
            preconditionFailure("NumPyArray admitted a non-float feature dtype")
        }
    }
}
