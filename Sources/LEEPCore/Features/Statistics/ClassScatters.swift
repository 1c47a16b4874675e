import CBLAS

/// Per target class: the count n_c, the mean μ_c and the centred scatter matrix
/// M2_c = Σ_{y_i = c} (f_i − μ_c)(f_i − μ_c)ᵀ: what TransRate's per-class coding rates need, and
/// from which the whole data's M2 follows (Y·D(D+1)/2 + Y·(D + 1) values, one pass).
///
/// Y·D² values do not fit every run: `fits(featureWidth:targetClasses:)` bounds them, and a run
/// beyond the bound is not given this statistic (TransRate then says why it has no score).
/// Rows are added in per-class blocks, each centred on its own mean, its scatter accumulated by
/// BLAS `dsyrk` straight into M2_c and merged by Chan et al.'s formula (a rank-one `dsyr`).
public struct ClassScatters: MergeableStatistic {
    public static let kind = StatisticKind.classScatters

    /// The most float64 values the scatter matrices may hold (512 MiB): a worker holds one
    /// copy per open run with features, `leep score` one per thread.
    public static let maximumScatterValues = 1 << 26

    /// True when Y scatter matrices of D×D fit within `maximumScatterValues`.
    public static func fits(featureWidth: Int, targetClasses: Int) -> Bool {
        featureWidth <= maximumScatterValues && targetClasses <= maximumScatterValues / (featureWidth * featureWidth)
    }

    public let featureWidth: Int
    public private(set) var targetClasses: Int
    public private(set) var sampleCount: Int
    /// n_c.
    public private(set) var classCounts: [Int]
    /// μ_c, Y×D row-major (zeros for a class with no sample).
    public private(set) var classMeans: [Double]
    /// M2_c for each class, Y blocks of D×D row-major; only each upper triangle is kept.
    public private(set) var classScatters: [Double]

    /// Rows of one class widened and centred at a time.
    static let blockRows = 512

    public init(featureWidth: Int, targetClasses: Int) {
        precondition(featureWidth > 0 && targetClasses > 0)
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        sampleCount = 0
        classCounts = Array(repeating: 0, count: targetClasses)
        classMeans = Array(repeating: 0, count: targetClasses * featureWidth)
        classScatters = Array(repeating: 0, count: targetClasses * featureWidth * featureWidth)
    }

    public mutating func addValidated(_ chunk: FeatureChunk) {
        let d = featureWidth
        let rowsOfClass = Dictionary(grouping: 0..<chunk.rowCount, by: { Int(chunk.labels[$0]) })
        let capacity = min(Self.blockRows, chunk.rowCount)
        guard capacity > 0 else { return }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: capacity * d) { scratch in
            let block = scratch.baseAddress!
            for c in rowsOfClass.keys.sorted() {
                let rows = rowsOfClass[c]!
                var start = 0
                while start < rows.count {
                    let count = min(capacity, rows.count - start)
                    for (k, row) in rows[start..<(start + count)].enumerated() {
                        chunk.widen(rows: row, count: 1, into: block + k * d)
                    }
                    addCentred(block: block, count: count, toClass: c)
                    start += count
                }
            }
        }
        sampleCount += chunk.rowCount
    }

    /// Merges `count` widened rows of class `c` (overwritten: centred in place).
    private mutating func addCentred(block: UnsafeMutablePointer<Double>, count: Int, toClass c: Int) {
        let d = featureWidth
        var blockMean = [Double](repeating: 0, count: d)
        for i in 0..<count {
            for j in 0..<d { blockMean[j] += block[i * d + j] }
        }
        for j in 0..<d { blockMean[j] /= Double(count) }
        for i in 0..<count {
            for j in 0..<d { block[i * d + j] -= blockMean[j] }
        }
        let d32 = Int32(d)
        classScatters.withUnsafeMutableBufferPointer { scatters in
            BLASLock.run {
                cblas_dsyrk(
                    CblasRowMajor, CblasUpper, CblasTrans, d32, Int32(count), 1, block, d32, 1,
                    scatters.baseAddress! + c * d * d, d32)
            }
        }
        join(toClass: c, count: count, mean: blockMean)
    }

    /// Chan's merge of a set of `count` rows with mean `mean` whose scatter is already added
    /// into M2_c: the cross term n_a n_b/n δδᵀ, the new mean and count.
    private mutating func join(toClass c: Int, count: Int, mean: [Double]) {
        let d = featureWidth
        let a = Double(classCounts[c])
        let b = Double(count)
        let total = a + b
        let offset = c * d
        let delta = (0..<d).map { mean[$0] - classMeans[offset + $0] }
        if a > 0 {
            let d32 = Int32(d)
            classScatters.withUnsafeMutableBufferPointer { scatters in
                BLASLock.run {
                    cblas_dsyr(CblasRowMajor, CblasUpper, d32, a * b / total, delta, 1, scatters.baseAddress! + c * d * d, d32)
                }
            }
        }
        for j in 0..<d { classMeans[offset + j] += delta[j] * (b / total) }
        classCounts[c] += count
    }

    public mutating func merge(_ other: ClassScatters) throws(FeatureWidthMismatch) {
        guard other.featureWidth == featureWidth else {
            throw FeatureWidthMismatch(expected: featureWidth, actual: other.featureWidth)
        }
        let other = other.widened(toTargetClasses: max(targetClasses, other.targetClasses))
        self = widened(toTargetClasses: other.targetClasses)
        let square = featureWidth * featureWidth
        for c in 0..<targetClasses where other.classCounts[c] > 0 {
            for k in (c * square)..<((c + 1) * square) { classScatters[k] += other.classScatters[k] }
            join(toClass: c, count: other.classCounts[c],
                 mean: Array(other.classMeans[(c * featureWidth)..<((c + 1) * featureWidth)]))
        }
        sampleCount += other.sampleCount
    }

    public func widened(toTargetClasses newTargetClasses: Int) -> ClassScatters {
        precondition(newTargetClasses >= targetClasses, "cannot narrow \(targetClasses) target classes to \(newTargetClasses)")
        guard newTargetClasses > targetClasses else { return self }
        var copy = self
        let added = newTargetClasses - targetClasses
        copy.classCounts += repeatElement(0, count: added)
        copy.classMeans += repeatElement(0, count: added * featureWidth)
        copy.classScatters += repeatElement(0, count: added * featureWidth * featureWidth)
        copy.targetClasses = newTargetClasses
        return copy
    }

    /// Y + Y·D + Y·D(D+1)/2: the counts, the means, each class's upper triangle.
    public static func flattenedCount(targetClasses: Int, featureWidth: Int) -> Int {
        targetClasses * (1 + featureWidth + featureWidth * (featureWidth + 1) / 2)
    }

    /// The class counts (Y), the class means (Y×D), then each class's M2_c upper triangle row
    /// by row ((i, j) for j ≥ i).
    public var flattened: [Double] {
        let d = featureWidth
        var values = classCounts.map(Double.init) + classMeans
        values.reserveCapacity(Self.flattenedCount(targetClasses: targetClasses, featureWidth: d))
        for c in 0..<targetClasses {
            for i in 0..<d {
                let start = c * d * d + i * d
                values += classScatters[(start + i)..<(start + d)]
            }
        }
        return values
    }

    /// Refuses a wrong length, a value that is not finite, class counts that are not whole
    /// numbers ≥ 0 adding up to `sampleCount`, a negative diagonal entry of a scatter matrix,
    /// and a class with no sample whose mean or scatter is not zero.
    public init(
        flattened values: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        var reader = try FlatStatisticReader(
            values, expected: Self.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth),
            sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
        self.init(featureWidth: featureWidth, targetClasses: targetClasses)
        let d = featureWidth
        classCounts = try reader.classCounts()
        self.sampleCount = sampleCount
        classMeans = reader.take(targetClasses * d)
        for c in 0..<targetClasses {
            for i in 0..<d {
                let start = c * d * d + i * d
                classScatters.replaceSubrange((start + i)..<(start + d), with: reader.take(d - i))
                guard classScatters[start + i] >= 0 else {
                    throw .invalid("class \(c)'s Σ(f−μ_c)² of feature \(i) is \(classScatters[start + i])")
                }
            }
        }
        try reader.requireEmptyClassesZero(classCounts, [classMeans, classScatters])
    }
}
