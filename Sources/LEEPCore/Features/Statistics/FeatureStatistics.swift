import COpenBLAS

/// The additive sufficient statistics of a run's feature rows f_i (D values each) and target
/// labels y_i, from which LogME, the H-score and the shrinkage H-score follow exactly
/// (docs/transferability.md).
///
/// Moments are kept **about the mean**, never as raw power sums, so that features with a large
/// common offset keep their precision: n, μ, M2 = Σ(f−μ)(f−μ)ᵀ, V3 = Σ‖f−μ‖²(f−μ),
/// M4 = Σ‖f−μ‖⁴, and per target class the count and the mean. Two sets merge exactly (up to
/// rounding) in any order with Chan et al.'s and Pébay's formulas: a set's moments about its
/// own mean are re-expressed about the merged mean, then added. Rows are added in blocks:
/// each block is centred on its own mean, its M2 goes straight into the running M2 through
/// BLAS `dsyrk`, and the block is merged like any other set.
public struct FeatureStatistics: MergeableStatistic {
    public static let kind = StatisticKind.moments

    /// D.
    public let featureWidth: Int
    /// Y, the number of target classes (grows with `widened` when shards know more classes).
    public private(set) var targetClasses: Int
    /// n.
    public private(set) var sampleCount: Int
    /// μ (D values).
    public private(set) var mean: [Double]
    /// M2, D×D row-major; only the upper triangle (j ≥ i) is kept, the strict lower one is 0.
    public private(set) var centredSquares: [Double]
    /// V3 = Σ‖f−μ‖²(f−μ) (D values): what shifting M4 to another mean needs.
    public private(set) var centredCubes: [Double]
    /// M4 = Σ‖f−μ‖⁴: what Ledoit–Wolf's shrinkage needs.
    public private(set) var centredFourth: Double
    /// n_c for each target class c.
    public private(set) var classCounts: [Int]
    /// μ_c, Y×D row-major (zeros for a class with no sample).
    public private(set) var classMeans: [Double]

    /// Rows widened and centred at a time. Besides its `dsyrk`, each block costs two passes over
    /// M2 (M2·d and the rank-one δδᵀ of the merge): at 256 rows those took a tenth of a
    /// 50,000 × 2,048 `leep score --features`; at 1,024 they are lost in the noise, and the
    /// scratch (8 MiB at D = 1,024… 16 MiB at 2,048) is still small.
    static let blockRows = 1024

    /// Empty statistics for D features and Y target classes.
    public init(featureWidth: Int, targetClasses: Int) {
        precondition(featureWidth > 0 && targetClasses > 0)
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        sampleCount = 0
        mean = Array(repeating: 0, count: featureWidth)
        centredSquares = Array(repeating: 0, count: featureWidth * featureWidth)
        centredCubes = Array(repeating: 0, count: featureWidth)
        centredFourth = 0
        classCounts = Array(repeating: 0, count: targetClasses)
        classMeans = Array(repeating: 0, count: targetClasses * featureWidth)
    }

    // MARK: Adding rows

    /// Adds every row of a validated chunk, in blocks of `blockRows`.
    public mutating func addValidated(_ chunk: FeatureChunk) {
        let d = featureWidth
        let rows = min(Self.blockRows, chunk.rowCount)
        guard rows > 0 else { return }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: rows * d + 2 * rows) { scratch in
            let block = scratch.baseAddress!
            let norms = block + rows * d
            let ones = norms + rows
            ones.initialize(repeating: 1, count: rows)
            var start = 0
            while start < chunk.rowCount {
                let count = min(rows, chunk.rowCount - start)
                chunk.widen(rows: start, count: count, into: block)
                addClassMeans(of: block, labels: chunk.labels, from: start, count: count)
                addCentred(block: block, count: count, norms: norms, ones: ones)
                start += count
            }
        }
    }

    /// n_c and μ_c for the block's rows (running means: μ_c += (f − μ_c) / n_c).
    private mutating func addClassMeans(
        of block: UnsafePointer<Double>, labels: UnsafeBufferPointer<Int32>, from start: Int, count: Int
    ) {
        let d = featureWidth
        classMeans.withUnsafeMutableBufferPointer { means in
            for i in 0..<count {
                let y = Int(labels[start + i])
                classCounts[y] += 1
                let weight = 1 / Double(classCounts[y])
                let target = means.baseAddress! + y * d
                let row = block + i * d
                for j in 0..<d { target[j] += (row[j] - target[j]) * weight }
            }
        }
    }

    /// Merges a block of `count` widened rows (overwritten: they are centred in place).
    private mutating func addCentred(
        block: UnsafeMutablePointer<Double>, count: Int, norms: UnsafeMutablePointer<Double>,
        ones: UnsafePointer<Double>
    ) {
        let d = featureWidth
        let d32 = Int32(d)
        let rows32 = Int32(count)
        // The block's mean, then its rows about it.
        var blockMean = [Double](repeating: 0, count: d)
        BLAS.call { blas in
            blas.dgemv(CblasRowMajor, CblasTrans, rows32, d32, 1 / Double(count), block, d32, ones, 1, 0, &blockMean, 1)
        }
        for i in 0..<count {
            let row = block + i * d
            for j in 0..<d { row[j] -= blockMean[j] }
            var norm = 0.0
            for j in 0..<d { norm += row[j] * row[j] }
            norms[i] = norm
        }
        // V3 = Σ‖u‖²u = Uᵀq, M4 = Σ‖u‖⁴, tr M2 = Σ‖u‖².
        var blockCubes = [Double](repeating: 0, count: d)
        BLAS.call { blas in
            blas.dgemv(CblasRowMajor, CblasTrans, rows32, d32, 1, block, d32, norms, 1, 0, &blockCubes, 1)
        }
        var blockFourth = 0.0
        var blockTrace = 0.0
        for i in 0..<count {
            blockFourth += norms[i] * norms[i]
            blockTrace += norms[i]
        }
        let merged = mergePlan(otherCount: count, otherMean: blockMean)
        // The block's M2·d and dᵀM2 d from its rows (U d, then Uᵀ(U d)), so that its M2 need
        // never exist apart from the running one.
        var blockShifted = (cubes: blockCubes, fourth: blockFourth)
        if let merged {
            var projections = [Double](repeating: 0, count: count)
            var squaresTimesShift = [Double](repeating: 0, count: d)
            BLAS.call { blas in
                blas.dgemv(
                    CblasRowMajor, CblasNoTrans, rows32, d32, 1, block, d32, merged.otherShift, 1, 0, &projections, 1)
                blas.dgemv(
                    CblasRowMajor, CblasTrans, rows32, d32, 1, block, d32, projections, 1, 0, &squaresTimesShift, 1)
            }
            blockShifted = Self.shiftedHigherMoments(
                count: Double(count), trace: blockTrace, squaresTimesShift: squaresTimesShift,
                cubes: blockCubes, fourth: blockFourth, shift: merged.otherShift)
            shiftOwnHigherMoments(by: merged.ownShift)
        }
        centredSquares.withUnsafeMutableBufferPointer { squares in
            BLAS.call { blas in
                blas.dsyrk(CblasRowMajor, CblasUpper, CblasTrans, d32, rows32, 1, block, d32, 1, squares.baseAddress, d32)
            }
        }
        finishMerge(merged, otherCount: count, otherMean: blockMean, otherCubes: blockShifted.cubes,
                    otherFourth: blockShifted.fourth)
    }

    // MARK: Merging

    /// Adds `other`, the statistics of other rows of the same run. A smaller Y is widened first.
    public mutating func merge(_ other: FeatureStatistics) throws(FeatureWidthMismatch) {
        let other = try aligned(with: other)
        for c in 0..<targetClasses where other.classCounts[c] > 0 {
            let total = classCounts[c] + other.classCounts[c]
            let weight = Double(other.classCounts[c]) / Double(total)
            for j in 0..<featureWidth {
                let index = c * featureWidth + j
                classMeans[index] += (other.classMeans[index] - classMeans[index]) * weight
            }
            classCounts[c] = total
        }
        let merged = mergePlan(otherCount: other.sampleCount, otherMean: other.mean)
        var otherShifted = (cubes: other.centredCubes, fourth: other.centredFourth)
        if let merged {
            otherShifted = other.higherMoments(shiftedBy: merged.otherShift)
            shiftOwnHigherMoments(by: merged.ownShift)
        }
        for index in centredSquares.indices { centredSquares[index] += other.centredSquares[index] }
        finishMerge(merged, otherCount: other.sampleCount, otherMean: other.mean,
                    otherCubes: otherShifted.cubes, otherFourth: otherShifted.fourth)
    }

    /// How a set of `otherCount` rows with mean `otherMean` joins this one: δ = μ_b − μ_a and
    /// each set's shift d = (its mean − the merged mean). Nil when either set is empty (the
    /// other's moments are then taken as they are).
    private func mergePlan(otherCount: Int, otherMean: [Double]) -> MergePlan? {
        guard sampleCount > 0, otherCount > 0 else { return nil }
        let a = Double(sampleCount)
        let b = Double(otherCount)
        let total = a + b
        let delta = (0..<featureWidth).map { otherMean[$0] - mean[$0] }
        return MergePlan(
            delta: delta, ownShift: delta.map { -$0 * (b / total) }, otherShift: delta.map { $0 * (a / total) },
            crossWeight: a * b / total, otherFraction: b / total)
    }

    /// The pieces of one Chan/Pébay merge.
    private struct MergePlan {
        /// μ_b − μ_a.
        let delta: [Double]
        /// μ_a − μ (this set's shift to the merged mean).
        let ownShift: [Double]
        /// μ_b − μ.
        let otherShift: [Double]
        /// n_a·n_b / n, the weight of δδᵀ in the merged M2.
        let crossWeight: Double
        /// n_b / n.
        let otherFraction: Double
    }

    /// Re-expresses this set's V3 and M4 about a point `shift` away (before M2 changes).
    private mutating func shiftOwnHigherMoments(by shift: [Double]) {
        (centredCubes, centredFourth) = higherMoments(shiftedBy: shift)
    }

    /// V3 and M4 of this set about (its mean − shift).
    private func higherMoments(shiftedBy shift: [Double]) -> (cubes: [Double], fourth: Double) {
        var squaresTimesShift = [Double](repeating: 0, count: featureWidth)
        let d32 = Int32(featureWidth)
        BLAS.call { blas in
            blas.dsymv(CblasRowMajor, CblasUpper, d32, 1, centredSquares, d32, shift, 1, 0, &squaresTimesShift, 1)
        }
        return Self.shiftedHigherMoments(
            count: Double(sampleCount), trace: traceOfSquares, squaresTimesShift: squaresTimesShift,
            cubes: centredCubes, fourth: centredFourth, shift: shift)
    }

    /// For a set whose rows are u about its own mean, the sums over u + d:
    /// Σ‖u+d‖²(u+d) = V3 + (tr M2) d + 2 M2 d + n‖d‖² d and
    /// Σ‖u+d‖⁴ = M4 + 4 dᵀM2 d + n‖d‖⁴ + 4 dᵀV3 + 2‖d‖² tr M2 (Σu = 0 removes the rest).
    private static func shiftedHigherMoments(
        count: Double, trace: Double, squaresTimesShift: [Double], cubes: [Double], fourth: Double, shift: [Double]
    ) -> (cubes: [Double], fourth: Double) {
        var shiftNorm = 0.0
        var shiftSquaresShift = 0.0
        var shiftCubes = 0.0
        for j in shift.indices {
            shiftNorm += shift[j] * shift[j]
            shiftSquaresShift += shift[j] * squaresTimesShift[j]
            shiftCubes += shift[j] * cubes[j]
        }
        let newFourth = fourth + 4 * shiftSquaresShift + count * shiftNorm * shiftNorm + 4 * shiftCubes
            + 2 * shiftNorm * trace
        let newCubes = shift.indices.map { j in
            cubes[j] + trace * shift[j] + 2 * squaresTimesShift[j] + count * shiftNorm * shift[j]
        }
        return (newCubes, newFourth)
    }

    /// The last step of a merge, once M2 holds both sets' own M2: δδᵀ·n_a n_b/n, the new mean,
    /// the shifted V3 and M4, the new count.
    private mutating func finishMerge(
        _ plan: MergePlan?, otherCount: Int, otherMean: [Double], otherCubes: [Double], otherFourth: Double
    ) {
        guard otherCount > 0 else { return }
        guard let plan else {
            // This set was empty: the other's moments are the merged ones.
            mean = otherMean
            centredCubes = otherCubes
            centredFourth = otherFourth
            sampleCount = otherCount
            return
        }
        let d32 = Int32(featureWidth)
        centredSquares.withUnsafeMutableBufferPointer { squares in
            BLAS.call { blas in
                blas.dsyr(CblasRowMajor, CblasUpper, d32, plan.crossWeight, plan.delta, 1, squares.baseAddress, d32)
            }
        }
        for j in 0..<featureWidth {
            mean[j] += plan.delta[j] * plan.otherFraction
            centredCubes[j] += otherCubes[j]
        }
        centredFourth += otherFourth
        sampleCount += otherCount
    }

    /// tr M2 = Σ‖f−μ‖².
    var traceOfSquares: Double {
        (0..<featureWidth).reduce(0) { $0 + centredSquares[$1 * featureWidth + $1] }
    }

    /// The same statistics for a larger Y: classes beyond the current ones have no samples.
    public func widened(toTargetClasses newTargetClasses: Int) -> FeatureStatistics {
        precondition(newTargetClasses >= targetClasses, "cannot narrow \(targetClasses) target classes to \(newTargetClasses)")
        guard newTargetClasses > targetClasses else { return self }
        var copy = self
        copy.classCounts += repeatElement(0, count: newTargetClasses - targetClasses)
        copy.classMeans += repeatElement(0, count: (newTargetClasses - targetClasses) * featureWidth)
        copy.targetClasses = newTargetClasses
        return copy
    }

    // MARK: The flat form (partial frames)

    /// How many values `flattened` holds for Y classes and D features:
    /// Y + D + D(D+1)/2 + D + 1 + Y·D.
    public static func flattenedCount(targetClasses: Int, featureWidth: Int) -> Int {
        let d = featureWidth
        return targetClasses + d + d * (d + 1) / 2 + d + 1 + targetClasses * d
    }

    /// The statistics as one float64 vector, in this order: the class counts (Y), μ (D), M2's
    /// upper triangle row by row ((i, j) for j ≥ i: D(D+1)/2), V3 (D), M4 (1), the class means
    /// (Y×D row-major). n travels beside it (a partial's `sample_count`).
    public var flattened: [Double] {
        var values = [Double]()
        values.reserveCapacity(Self.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth))
        values += classCounts.map(Double.init)
        values += mean
        values.appendUpperTriangle(of: centredSquares, at: 0, dimension: featureWidth)
        values += centredCubes
        values.append(centredFourth)
        values += classMeans
        return values
    }

    /// Reads statistics back from `flattened` and the sample count, refusing what no honest
    /// `flattened` can be: a wrong length, a value that is not finite, class counts that are
    /// not whole numbers ≥ 0 adding up to `sampleCount`, a negative Σ‖f−μ‖² or M4, or a class
    /// with no sample whose mean is not zero.
    public init(
        flattened values: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        var reader = try Self.flatReader(
            values, sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
        self.init(featureWidth: featureWidth, targetClasses: targetClasses)
        let d = featureWidth
        classCounts = try reader.classCounts()
        self.sampleCount = sampleCount
        mean = reader.take(d)
        try reader.upperTriangle(into: &centredSquares, at: 0, dimension: d, name: "Σ(f−μ)²")
        centredCubes = reader.take(d)
        centredFourth = reader.take(1)[0]
        guard centredFourth >= 0 else { throw .invalid("Σ‖f−μ‖⁴ is \(centredFourth)") }
        classMeans = reader.take(targetClasses * d)
        try reader.requireEmptyClassesZero(classCounts, [classMeans])
    }
}

/// Why `FeatureStatistics.add` refused a chunk.
public enum FeatureAddError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A row (its label or a feature) is invalid.
    case row(InvalidRow)
    /// The chunk's rows are not D values long.
    case width(expected: Int, actual: Int)

    public var description: String {
        switch self {
        case .row(let error): error.description
        case .width(let expected, let actual): "\(actual) features a row where the run has \(expected)"
        }
    }
}

/// Statistics of two feature widths cannot be merged.
public struct FeatureWidthMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    /// The receiving statistics' D.
    public let expected: Int
    /// The other statistics' D.
    public let actual: Int

    /// Creates the error.
    public init(expected: Int, actual: Int) {
        self.expected = expected
        self.actual = actual
    }

    public var description: String { "statistics of \(actual) features cannot join statistics of \(expected)" }
}

/// A flat vector that is not the statistics of any rows.
public enum FeatureStatisticsError: Error, Equatable, Sendable, CustomStringConvertible {
    /// What is wrong with it.
    case invalid(String)

    public var description: String {
        switch self {
        case .invalid(let reason): "invalid feature statistics: \(reason)"
        }
    }
}
