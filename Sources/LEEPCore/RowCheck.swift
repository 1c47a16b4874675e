import CRowKernels

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
    @inlinable
    public func validate<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, targetClasses: Int
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

/// Sum and minimum of one row, in one read (`ProbabilityScalar.summarise`).
@usableFromInline
struct RowStatistics {
    @usableFromInline var sum: Double
    @usableFromInline var minimum: Double

    @inlinable
    init<Scalar: ProbabilityScalar>(of row: UnsafePointer<Scalar>, count: Int) {
        let summary = Scalar.summarise(row, count: count)
        sum = summary.sum
        minimum = summary.minimum
    }
}
