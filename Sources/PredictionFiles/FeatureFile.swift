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

    /// The feature statistics of all rows — the `kinds` given, by default every kind
    /// `FeatureStatisticSet.plan` names for this shape — in one pass over the mapping on `threads`
    /// threads (one contiguous slice each, merged in row order). Throws the first invalid row in
    /// row order, naming the file.
    public func statistics(
        threads: Int = 1, rowsPerChunk: Int = 4096, kinds: [StatisticKind]? = nil
    ) throws(FileError) -> FeatureStatisticSet {
        try pass(threads: threads, rowsPerChunk: rowsPerChunk) {
            FeatureStatisticSet(featureWidth: width, targetClasses: labels.targetClasses, kinds: kinds)
        } add: { (statistics: inout FeatureStatisticSet, chunk) throws(FeatureAddError) in
            try statistics.add(chunk)
        } merge: { whole, part in
            try! whole.merge(part)  // one file's slices share D and Y
        }
    }

    /// The feature metrics of `selection` (by default every one): the one-pass metrics from the
    /// statistics they read, and SFDA from two more passes over the mapping.
    public func metricReport(
        threads: Int = 1, rowsPerChunk: Int = 4096, selection: FeatureMetricSelection = .all
    ) throws(FileError) -> FeatureMetricReport {
        let kinds = selection.statisticKinds(featureWidth: width, targetClasses: labels.targetClasses)
        let statistics = try statistics(threads: threads, rowsPerChunk: rowsPerChunk, kinds: kinds)
        var report = FeatureMetricReport(statistics: statistics, metrics: selection.metrics)
        if selection.includesSFDA {
            report.record(
                SFDA.key, companions: [SFDA.shrinkageKey], title: SFDA.title,
                sfda(within: statistics[WithinClassScatter.self]!, threads: threads, rowsPerChunk: rowsPerChunk))
        }
        return report
    }

    /// SFDA's passes 2 and 3 (`SFDA`) over rows already validated by pass 1.
    func sfda(within: WithinClassScatter, threads: Int, rowsPerChunk: Int) -> MetricOutcome {
        let first: SFDA.Fit
        switch SFDA.Fit.fit(within) {
        case .success(let fit): first = fit
        case .failure(let undefined): return .undefined(undefined.reason)
        }
        let mixed = try! pass(threads: threads, rowsPerChunk: rowsPerChunk) {
            WithinClassScatter(featureWidth: width, targetClasses: labels.targetClasses)
        } add: { (mixed: inout WithinClassScatter, chunk) throws(FeatureAddError) in
            SFDA.addMixedRows(of: chunk, first: first, to: &mixed)
        } merge: { whole, part in
            try! whole.merge(part)
        }
        let second: SFDA.Fit
        switch SFDA.Fit.fit(mixed, shrinkage: first.shrinkage) {
        case .success(let fit): second = fit
        case .failure(let undefined): return .undefined("the fit to the mixed rows: \(undefined.reason)")
        }
        let sum = try! pass(threads: threads, rowsPerChunk: rowsPerChunk) { 0.0 } add: { (sum: inout Double, chunk) throws(FeatureAddError) in
            sum += SFDA.ownClassProbabilitySum(of: chunk, first: first, second: second)
        } merge: { whole, part in
            whole += part
        }
        return .scored([SFDA.key: sum / Double(sampleCount), SFDA.shrinkageKey: first.shrinkage])
    }

    /// One pass over every row, chunk by chunk, on `threads` threads: each slice folds its chunks
    /// into its own `initial()` with `add`, and the slices' results are merged in row order.
    /// Throws the first invalid row in row order, naming the file.
    func pass<Accumulator: Sendable>(
        threads: Int, rowsPerChunk: Int, initial: @Sendable () -> Accumulator,
        add: @Sendable (inout Accumulator, FeatureChunk) throws(FeatureAddError) -> Void,
        merge: (inout Accumulator, Accumulator) -> Void
    ) throws(FileError) -> Accumulator {
        let slices = FileScorer.slices(of: sampleCount, threads: threads, rowsPerChunk: rowsPerChunk)
        let parts: [Accumulator]
        do {
            parts = try FileScorer.inParallel(slices) { slice in
                var accumulator = initial()
                try forEachChunk(of: slice, rowsPerChunk: rowsPerChunk) { chunk throws(FeatureAddError) in
                    try add(&accumulator, chunk)
                }
                return accumulator
            }
        } catch let error as FileError {
            throw error
        } catch {
            preconditionFailure("a slice throws only file errors: \(error)")
        }
        var whole = parts[0]
        for part in parts.dropFirst() { merge(&whole, part) }
        return whole
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

    /// Calls `body` with each chunk of `rows` and its labels, naming the file in any row error.
    func forEachChunk(
        of rows: Range<Int>, rowsPerChunk: Int, _ body: (FeatureChunk) throws(FeatureAddError) -> Void
    ) throws(FileError) {
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
                    try body(chunk)
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
