import COpenBLAS

/// Per target class, the count n_c and the mean μ_c, and the centred scatter about the class
/// means — one D×D matrix per class (`ClassScatters`: M2_c = Σ_{y_i = c}(f_i − μ_c)(f_i − μ_c)ᵀ,
/// TransRate's per-class coding rates; the whole data's M2 follows from them) or their sum
/// (`WithinClassScatter`: W = Σ_c M2_c, SFDA's within-class scatter, exact where M2 minus the
/// between-class scatter would cancel).
///
/// Rows are added in per-class blocks, each centred on its own mean, its scatter accumulated by
/// BLAS `dsyrk` straight into its class's matrix (or the one pooled matrix) and merged by Chan
/// et al.'s formula (a rank-one `dsyr` of the class mean's shift).
public struct ScatterStatistic<Pooling: ScatterPooling>: MergeableStatistic {
    public static var kind: StatisticKind { Pooling.kind }

    public let featureWidth: Int
    public private(set) var targetClasses: Int
    public private(set) var sampleCount: Int
    /// n_c.
    public private(set) var classCounts: [Int]
    /// μ_c, Y×D row-major (zeros for a class with no sample).
    public private(set) var classMeans: [Double]
    /// The scatter matrices, `Pooling.matrices(targetClasses:)` blocks of D×D row-major (M2_c
    /// for each class, or W alone); only each upper triangle is kept.
    public private(set) var scatters: [Double]

    /// The block of class `c`'s scatter within `scatters`.
    private func block(of c: Int) -> Int { Pooling.matrices(targetClasses: targetClasses) == 1 ? 0 : c }

    /// Rows of one class widened and centred at a time.
    static var blockRows: Int { 512 }

    public init(featureWidth: Int, targetClasses: Int) {
        precondition(featureWidth > 0 && targetClasses > 0)
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        sampleCount = 0
        classCounts = Array(repeating: 0, count: targetClasses)
        classMeans = Array(repeating: 0, count: targetClasses * featureWidth)
        scatters = Array(repeating: 0, count: Pooling.matrices(targetClasses: targetClasses) * featureWidth * featureWidth)
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
    private mutating func addCentred(block rows: UnsafeMutablePointer<Double>, count: Int, toClass c: Int) {
        let d = featureWidth
        var blockMean = [Double](repeating: 0, count: d)
        for i in 0..<count {
            for j in 0..<d { blockMean[j] += rows[i * d + j] }
        }
        for j in 0..<d { blockMean[j] /= Double(count) }
        for i in 0..<count {
            for j in 0..<d { rows[i * d + j] -= blockMean[j] }
        }
        let d32 = Int32(d)
        let offset = block(of: c) * d * d
        scatters.withUnsafeMutableBufferPointer { scatters in
            BLAS.call { blas in
                blas.dsyrk(
                    CblasRowMajor, CblasUpper, CblasTrans, d32, Int32(count), 1, rows, d32, 1,
                    scatters.baseAddress! + offset, d32)
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
            let offset = block(of: c) * d * d
            scatters.withUnsafeMutableBufferPointer { scatters in
                BLAS.call { blas in
                    blas.dsyr(CblasRowMajor, CblasUpper, d32, a * b / total, delta, 1, scatters.baseAddress! + offset, d32)
                }
            }
        }
        for j in 0..<d { classMeans[offset + j] += delta[j] * (b / total) }
        classCounts[c] += count
    }

    public mutating func merge(_ other: ScatterStatistic) throws(FeatureWidthMismatch) {
        let other = try aligned(with: other)
        for k in scatters.indices { scatters[k] += other.scatters[k] }
        for c in 0..<targetClasses where other.classCounts[c] > 0 {
            join(toClass: c, count: other.classCounts[c],
                 mean: Array(other.classMeans[(c * featureWidth)..<((c + 1) * featureWidth)]))
        }
        sampleCount += other.sampleCount
    }

    public func widened(toTargetClasses newTargetClasses: Int) -> ScatterStatistic {
        precondition(newTargetClasses >= targetClasses, "cannot narrow \(targetClasses) target classes to \(newTargetClasses)")
        guard newTargetClasses > targetClasses else { return self }
        var copy = self
        let added = newTargetClasses - targetClasses
        copy.classCounts += repeatElement(0, count: added)
        copy.classMeans += repeatElement(0, count: added * featureWidth)
        copy.scatters += repeatElement(
            0, count: (Pooling.matrices(targetClasses: newTargetClasses) - Pooling.matrices(targetClasses: targetClasses))
                * featureWidth * featureWidth)
        copy.targetClasses = newTargetClasses
        return copy
    }

    /// Y + Y·D + M·D(D+1)/2, M the matrices (Y or 1): the counts, the means, each matrix's
    /// upper triangle.
    public static func flattenedCount(targetClasses: Int, featureWidth: Int) -> Int {
        targetClasses * (1 + featureWidth) + Pooling.matrices(targetClasses: targetClasses) * featureWidth * (featureWidth + 1) / 2
    }

    /// The class counts (Y), the class means (Y×D), then each matrix's upper triangle row by
    /// row ((i, j) for j ≥ i).
    public var flattened: [Double] {
        let d = featureWidth
        var values = classCounts.map(Double.init) + classMeans
        values.reserveCapacity(Self.flattenedCount(targetClasses: targetClasses, featureWidth: d))
        for c in 0..<Pooling.matrices(targetClasses: targetClasses) {
            values.appendUpperTriangle(of: scatters, at: c * d * d, dimension: d)
        }
        return values
    }

    /// Refuses a wrong length, a value that is not finite, class counts that are not whole
    /// numbers ≥ 0 adding up to `sampleCount`, a negative diagonal entry of a scatter matrix,
    /// and a class with no sample whose mean (or, per class, scatter) is not zero.
    public init(
        flattened values: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        var reader = try Self.flatReader(
            values, sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
        self.init(featureWidth: featureWidth, targetClasses: targetClasses)
        let d = featureWidth
        classCounts = try reader.classCounts()
        self.sampleCount = sampleCount
        classMeans = reader.take(targetClasses * d)
        let matrices = Pooling.matrices(targetClasses: targetClasses)
        for c in 0..<matrices {
            try reader.upperTriangle(into: &scatters, at: c * d * d, dimension: d, name: "scatter \(c)'s Σ(f−μ_c)²")
        }
        try reader.requireEmptyClassesZero(classCounts, matrices == 1 ? [classMeans] : [classMeans, scatters])
    }
}

/// Whether a `ScatterStatistic` keeps one scatter matrix per class or their sum.
public protocol ScatterPooling: Sendable {
    /// The statistic's kind.
    static var kind: StatisticKind { get }
    /// How many D×D matrices it keeps for Y classes.
    static func matrices(targetClasses: Int) -> Int
}

/// One scatter matrix per class: TransRate's statistic.
public enum PerClassScatter: ScatterPooling {
    public static let kind = StatisticKind.classScatters
    public static func matrices(targetClasses: Int) -> Int { targetClasses }
}

/// The classes' scatters summed, W = Σ_c M2_c: SFDA's statistic.
public enum PooledScatter: ScatterPooling {
    public static let kind = StatisticKind.withinClassScatter
    public static func matrices(targetClasses: Int) -> Int { 1 }
}

/// Per-class counts, means and scatter matrices (TransRate).
public typealias ClassScatters = ScatterStatistic<PerClassScatter>

/// Per-class counts and means, and the pooled within-class scatter W = Σ_c M2_c (SFDA).
public typealias WithinClassScatter = ScatterStatistic<PooledScatter>

extension ScatterStatistic where Pooling == PooledScatter {
    /// The within-class scatter of the rows `perClass` describes: their per-class scatters summed.
    public init(pooling perClass: ClassScatters) {
        self.init(featureWidth: perClass.featureWidth, targetClasses: perClass.targetClasses)
        let square = featureWidth * featureWidth
        for c in 0..<targetClasses {
            for k in 0..<square { scatters[k] += perClass.scatters[c * square + k] }
        }
        (sampleCount, classCounts, classMeans) = (perClass.sampleCount, perClass.classCounts, perClass.classMeans)
    }
}

extension ScatterStatistic where Pooling == PerClassScatter {
    /// The most float64 values the per-class matrices may hold (512 MiB): a worker holds one
    /// copy per open run with features, `leep score` one per thread.
    public static var maximumScatterValues: Int { 1 << 26 }

    /// True when Y scatter matrices of D×D fit within `maximumScatterValues`.
    public static func fits(featureWidth: Int, targetClasses: Int) -> Bool {
        featureWidth <= maximumScatterValues && targetClasses <= maximumScatterValues / (featureWidth * featureWidth)
    }

    /// M2_c for each class, Y blocks of D×D row-major (upper triangles).
    public var classScatters: [Double] { scatters }
}
