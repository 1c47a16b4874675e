import RealModule

/// The interval the joint alone certifies for LEEP, before pass 2 reads a row again
/// (docs/transferability.md, "The bracket of pass 1").
///
/// With a_i = Σ_z θ_iz P(y_i|z) the expected empirical prediction of sample i, LEEP is the mean
/// of log a_i. The log is concave, so Jensen bounds it both ways from pass-1 sums only:
/// * `lower` = Σ_{y,z} P(y,z) log P(y|z) — Jensen inside each a_i (θ_i is a distribution over z);
/// * `upper` = log Σ_{y,z} P(y,z)² / P(z) — Jensen across the samples (log of the mean of a_i,
///   whose mean is that sum).
/// Both are exact functions of the joint, so a run's bracket is the same whatever the chunking
/// or the order of the merges, and `lower` ≤ LEEP ≤ `upper` holds for every data set.
public struct LEEPBracket: Sendable, Equatable {
    /// Σ_{y,z} P(y,z) log P(y|z): the negative conditional entropy of Y given the soft Z.
    public let lower: Double
    /// log Σ_{y,z} P(y,z)² / P(z): the log of the mean expected empirical prediction.
    public let upper: Double

    public init(lower: Double, upper: Double) {
        self.lower = lower
        self.upper = upper
    }

    /// The bracket of `joint`'s LEEP; nil before any sample.
    public init?(joint: JointAccumulator) {
        guard joint.sampleCount > 0 else { return nil }
        let (y, z) = (joint.targetClasses, joint.sourceClasses)
        let sums = joint.jointSums
        // n·P(z) = Σ_y n·P(y, z); each term below is a ratio of sums, so 1/n enters once.
        var marginal = [Double](repeating: 0, count: z)
        for target in 0..<y {
            for source in 0..<z { marginal[source] += sums[target * z + source] }
        }
        let n = Double(joint.sampleCount)
        var lower = 0.0
        var squares = 0.0
        for target in 0..<y {
            for source in 0..<z where marginal[source] > 0 {
                let cell = sums[target * z + source]
                guard cell > 0 else { continue }  // 0 · log 0 = 0
                let conditional = cell / marginal[source]
                lower += cell * Double.log(conditional)
                squares += cell * conditional
            }
        }
        // When both bounds are tight (one-hot θ_i, or a_i the same for every sample) rounding
        // may put the upper one an ulp below the lower: it is then the lower one.
        let bound = lower / n
        self.init(lower: bound, upper: max(bound, Double.log(squares / n)))
    }

    /// How wide the interval is (nats).
    public var width: Double { upper - lower }

    /// True when `value` lies inside, within `tolerance` relative to the bounds' size.
    public func contains(_ value: Double, tolerance: Double = 1e-12) -> Bool {
        let slack = tolerance * max(1, abs(lower), abs(upper))
        return value >= lower - slack && value <= upper + slack
    }
}
