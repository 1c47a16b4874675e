/// Why a row of predictions or its label cannot be scored.
public enum RowProblem: Equatable, Sendable {
    /// A value is NaN or ±infinity.
    case notFinite(column: Int, value: Double)
    /// A probability is below zero.
    case negative(column: Int, value: Double)
    /// The row does not sum to 1 within the tolerance.
    case notNormalised(sum: Double, tolerance: Double)
    /// The label is outside `[0, targetClasses)`.
    case labelOutOfRange(label: Int64, targetClasses: Int)
    /// The label is below 0 (reported this way when Y is not given but inferred).
    case negativeLabel(label: Int64)
    /// A feature value is NaN or ±infinity.
    case featureNotFinite(column: Int, value: Double)
}

/// A row that failed validation, named by its index in the whole data set.
public struct InvalidRow: Error, Equatable, Sendable, CustomStringConvertible {
    /// The 0-based row index in the whole data set.
    public let row: Int
    /// What is wrong with it.
    public let problem: RowProblem

    /// Creates an error for `row`.
    public init(row: Int, problem: RowProblem) {
        self.row = row
        self.problem = problem
    }

    /// One sentence naming the row and the problem, with the likely cause where there is one.
    public var description: String {
        "row \(row): \(problem)"
    }
}

extension RowProblem: CustomStringConvertible {
    /// Rows that look like raw scores almost always are logits; say so, since that is the fix.
    private static let logitsHint = "these look like logits or unnormalised scores — apply softmax first"

    public var description: String {
        switch self {
        case .notFinite(let column, let value):
            return "column \(column) is \(value); probabilities must be finite"
        case .negative(let column, let value):
            return "column \(column) is \(value), a negative probability; \(Self.logitsHint)"
        case .notNormalised(let sum, let tolerance):
            let base = "the row sums to \(sum), not 1 (tolerance \(tolerance))"
            // A sum this far off is not rounding error in a softmax; it is the wrong tensor.
            return abs(sum - 1) > 0.1 ? "\(base); \(Self.logitsHint)" : base
        case .labelOutOfRange(let label, let targetClasses):
            return "label \(label) is outside [0, \(targetClasses))"
        case .negativeLabel(let label):
            return "label \(label) is negative; labels are class indices 0, 1, …"
        case .featureNotFinite(let column, let value):
            return "feature \(column) is \(value); features must be finite"
        }
    }
}
