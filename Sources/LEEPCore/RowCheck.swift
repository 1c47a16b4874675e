/// The acceptance rule for one row of softmax outputs (docs/leep.md, "Validation").
///
/// A row is accepted when every value is finite and non-negative and the row sums to 1 within
/// `sumTolerance` (absolute). Rows are never renormalised or clipped: what is accepted is scored
/// exactly as given.
public struct RowCheck: Sendable, Equatable {
    /// The default tolerance on `|Σ_z θ_z − 1|`: loose enough for float16 softmax outputs over
    /// tens of thousands of classes, tight enough that logits and unnormalised scores fail.
    public static let defaultSumTolerance = 1e-3

    /// The largest accepted `|Σ_z θ_z − 1|`.
    public var sumTolerance: Double

    /// Creates a check with the given tolerance.
    public init(sumTolerance: Double = RowCheck.defaultSumTolerance) {
        self.sumTolerance = sumTolerance
    }

    /// Throws the first invalid row of `chunk` (a value, a row sum, or a label outside [0, Y)).
    ///
    /// When `argmaxes` is given (room for one entry a row), it receives each valid row's ẑ_i =
    /// argmax_z θ_iz (ties: lowest index), found in the same read as the row's sum.
    @inlinable
    public func validate<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, targetClasses: Int,
        argmaxes: UnsafeMutableBufferPointer<Int32>? = nil
    ) throws(InvalidRow) {
        for i in 0..<chunk.rowCount {
            let label = chunk.labels[i]
            guard label >= 0 && Int(label) < targetClasses else {
                throw InvalidRow(
                    row: chunk.firstRow + i,
                    problem: .labelOutOfRange(label: Int64(label), targetClasses: targetClasses))
            }
            let row = chunk.row(i)
            let statistics = RowStatistics(of: row, count: chunk.sourceClasses)
            if let problem = problem(of: row, count: chunk.sourceClasses, statistics: statistics) {
                throw InvalidRow(row: chunk.firstRow + i, problem: problem)
            }
            argmaxes?[i] = Int32(truncatingIfNeeded: statistics.argmax)
        }
    }

    /// Returns the problem of `row`, or nil when it is valid. `statistics` must be those of `row`.
    @inlinable
    func problem<Scalar: ProbabilityScalar>(
        of row: UnsafePointer<Scalar>, count: Int, statistics: RowStatistics
    ) -> RowProblem? {
        if !statistics.sum.isFinite {
            // NaN and ±infinity both poison the sum; find the first culprit to name it.
            for z in 0..<count where !row[z].isFinite {
                return .notFinite(column: z, value: Double(row[z]))
            }
        }
        if statistics.minimum < 0 {
            for z in 0..<count where row[z] < 0 {
                return .negative(column: z, value: Double(row[z]))
            }
        }
        if !(abs(statistics.sum - 1) <= sumTolerance) {
            return .notNormalised(sum: statistics.sum, tolerance: sumTolerance)
        }
        return nil
    }
}

/// Sum, minimum and argmax of one row, in one vectorised read and a scan from L1.
@usableFromInline
struct RowStatistics {
    @usableFromInline var sum: Double
    @usableFromInline var minimum: Double
    /// The first column holding the row's largest value (meaningful for rows without NaN).
    @usableFromInline var argmax: Int

    @inlinable
    init<Scalar: ProbabilityScalar>(of row: UnsafePointer<Scalar>, count: Int) {
        // Eight independent lanes keep the reductions in vector registers. On short rows each
        // lane also remembers the first column of its maximum (strict >), which spares a scan
        // whose data-dependent exit mispredicts once a row; on long rows that bookkeeping
        // costs more than the scan, which then runs over a row already in L1.
        let tracksColumns = count < 64
        var sums = SIMD8<Double>.zero
        var minima = SIMD8<Double>(repeating: .infinity)
        var maxima = SIMD8<Double>(repeating: -.infinity)
        var maximaColumns = SIMD8<Int64>(0, 1, 2, 3, 4, 5, 6, 7)
        var columns = SIMD8<Int64>(0, 1, 2, 3, 4, 5, 6, 7)
        var z = 0
        while z + 8 <= count {
            let lanes = widenedLanes(row + z)
            sums += lanes
            minima = minima.replacing(with: lanes, where: lanes .< minima)
            let larger = lanes .> maxima
            maxima = maxima.replacing(with: lanes, where: larger)
            if tracksColumns {
                maximaColumns = maximaColumns.replacing(with: columns, where: larger)
                columns &+= 8
            }
            z += 8
        }
        var sum = sums.sum()
        var minimum = smallestLane(minima)
        var maximum = largestLane(maxima)
        // ẑ = the first column holding the maximum (ties: lowest index).
        var argmax = 0
        if tracksColumns {
            argmax = Int.max
            for lane in 0..<8 where maxima[lane] == maximum {
                argmax = Swift.min(argmax, Int(maximaColumns[lane]))
            }
            if argmax == Int.max { argmax = 0 }  // no lane ran (Z < 8) or NaN, which is refused
        } else if maximum.isFinite {
            // The maximum is a widened element, so it narrows back exactly.
            // Eight columns a step without an early exit inside the step, which the compiler
            // turns into vector compares; then the exact column within the step.
            let largest = Scalar(maximum)
            while argmax + 8 <= z {
                var hits = 0
                for lane in 0..<8 where row[argmax + lane] == largest { hits |= 1 << lane }
                if hits != 0 {
                    argmax += hits.trailingZeroBitCount
                    break
                }
                argmax += 8
            }
        }
        while z < count {
            let value = Double(row[z])
            sum += value
            minimum = Swift.min(minimum, value)
            if value > maximum {
                maximum = value
                argmax = z
            }
            z += 1
        }
        self.sum = sum
        self.minimum = minimum
        self.argmax = argmax
    }
}
