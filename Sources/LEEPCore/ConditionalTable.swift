/// P(y | z) = P(y, z) / P(z), the empirical conditional of target given source class, derived
/// from a run's final joint. Pass 2 reads it once per sample.
///
/// A source class that never receives probability mass (P(z) = 0) gets P(y | z) = 0 for every y:
/// no sample has θ_iz > 0 there, so the column never contributes to any EEP_i (no epsilon).
public struct ConditionalTable: Sendable, Equatable {
    /// Y, the number of target classes.
    public let targetClasses: Int
    /// Z, the number of source classes.
    public let sourceClasses: Int
    /// P(y | z), row-major by target class y, so that pass 2's dot products read contiguous rows.
    public let probabilities: [Double]

    /// Derives the conditional from the final joint of a run.
    public init(joint: JointAccumulator) {
        let y = joint.targetClasses
        let z = joint.sourceClasses
        // n·P(z) = Σ_y n·P(y, z); the 1/n cancels in the ratio.
        var marginal = [Double](repeating: 0, count: z)
        for target in 0..<y {
            for source in 0..<z { marginal[source] += joint.jointSums[target * z + source] }
        }
        var conditional = [Double](repeating: 0, count: y * z)
        for target in 0..<y {
            for source in 0..<z where marginal[source] > 0 {
                conditional[target * z + source] = joint.jointSums[target * z + source] / marginal[source]
            }
        }
        self.init(targetClasses: y, sourceClasses: z, uncheckedProbabilities: conditional)
    }

    /// Rebuilds a table received from another process.
    public init(targetClasses: Int, sourceClasses: Int, probabilities: [Double]) throws(ShapeMismatch) {
        guard probabilities.count == targetClasses * sourceClasses else {
            throw ShapeMismatch(
                expected: (targetClasses, sourceClasses),
                actual: (probabilities.count / max(sourceClasses, 1), sourceClasses))
        }
        self.init(targetClasses: targetClasses, sourceClasses: sourceClasses, uncheckedProbabilities: probabilities)
    }

    private init(targetClasses: Int, sourceClasses: Int, uncheckedProbabilities: [Double]) {
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.probabilities = uncheckedProbabilities
    }
}
