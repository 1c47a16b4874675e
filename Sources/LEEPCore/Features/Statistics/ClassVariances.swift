/// Per target class: the count n_c, the mean μ_c and, for each feature j, the centred sum of
/// squares Σ_{y_i = c} (f_ij − μ_cj)²: what GBC's diagonal and spherical Gaussians need
/// (Y·(2D + 1) values, one pass).
///
/// Rows are added by Welford's update and sets merge by Chan et al.'s formula, class by class,
/// so no raw power sum ever cancels: a large common offset costs no precision.
public struct ClassVariances: MergeableStatistic {
    public static let kind = StatisticKind.classVariances

    public let featureWidth: Int
    public private(set) var targetClasses: Int
    public private(set) var sampleCount: Int
    /// n_c.
    public private(set) var classCounts: [Int]
    /// μ_c, Y×D row-major (zeros for a class with no sample).
    public private(set) var classMeans: [Double]
    /// Σ (f − μ_c)² per class and feature, Y×D row-major.
    public private(set) var classSquares: [Double]

    public init(featureWidth: Int, targetClasses: Int) {
        precondition(featureWidth > 0 && targetClasses > 0)
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        sampleCount = 0
        classCounts = Array(repeating: 0, count: targetClasses)
        classMeans = Array(repeating: 0, count: targetClasses * featureWidth)
        classSquares = Array(repeating: 0, count: targetClasses * featureWidth)
    }

    public mutating func addValidated(_ chunk: FeatureChunk) {
        let d = featureWidth
        withUnsafeTemporaryAllocation(of: Double.self, capacity: d) { row in
            let row = row.baseAddress!
            classMeans.withUnsafeMutableBufferPointer { means in
                classSquares.withUnsafeMutableBufferPointer { squares in
                    for i in 0..<chunk.rowCount {
                        chunk.widen(rows: i, count: 1, into: row)
                        let c = Int(chunk.labels[i])
                        classCounts[c] += 1
                        let weight = 1 / Double(classCounts[c])
                        let mean = means.baseAddress! + c * d
                        let square = squares.baseAddress! + c * d
                        for j in 0..<d {
                            let before = row[j] - mean[j]
                            mean[j] += before * weight
                            square[j] += before * (row[j] - mean[j])
                        }
                    }
                }
            }
        }
        sampleCount += chunk.rowCount
    }

    public mutating func merge(_ other: ClassVariances) throws(FeatureWidthMismatch) {
        let other = try aligned(with: other)
        let d = featureWidth
        for c in 0..<targetClasses where other.classCounts[c] > 0 {
            let a = Double(classCounts[c])
            let b = Double(other.classCounts[c])
            let total = a + b
            for j in 0..<d {
                let index = c * d + j
                let delta = other.classMeans[index] - classMeans[index]
                classSquares[index] += other.classSquares[index] + delta * delta * (a * b / total)
                classMeans[index] += delta * (b / total)
            }
            classCounts[c] += other.classCounts[c]
        }
        sampleCount += other.sampleCount
    }

    public func widened(toTargetClasses newTargetClasses: Int) -> ClassVariances {
        precondition(newTargetClasses >= targetClasses, "cannot narrow \(targetClasses) target classes to \(newTargetClasses)")
        guard newTargetClasses > targetClasses else { return self }
        var copy = self
        let added = newTargetClasses - targetClasses
        copy.classCounts += repeatElement(0, count: added)
        copy.classMeans += repeatElement(0, count: added * featureWidth)
        copy.classSquares += repeatElement(0, count: added * featureWidth)
        copy.targetClasses = newTargetClasses
        return copy
    }

    /// Y + 2·Y·D: the counts, the means, the sums of squares.
    public static func flattenedCount(targetClasses: Int, featureWidth: Int) -> Int {
        targetClasses * (1 + 2 * featureWidth)
    }

    /// The class counts (Y), the class means (Y×D), the sums of squares (Y×D).
    public var flattened: [Double] { classCounts.map(Double.init) + classMeans + classSquares }

    /// Refuses a wrong length, a value that is not finite, class counts that are not whole
    /// numbers ≥ 0 adding up to `sampleCount`, a negative sum of squares, and a class with no
    /// sample whose mean or sum of squares is not zero.
    public init(
        flattened values: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        var reader = try Self.flatReader(
            values, sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
        self.init(featureWidth: featureWidth, targetClasses: targetClasses)
        classCounts = try reader.classCounts()
        self.sampleCount = sampleCount
        classMeans = reader.take(targetClasses * featureWidth)
        classSquares = reader.take(targetClasses * featureWidth)
        if let bad = classSquares.firstIndex(where: { $0 < 0 }) {
            throw .invalid("class \(bad / featureWidth) has a sum of squares of \(classSquares[bad]) for feature \(bad % featureWidth)")
        }
        try reader.requireEmptyClassesZero(classCounts, [classMeans, classSquares])
    }
}
