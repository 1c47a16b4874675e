/// The final scores of one run: LEEP with its companions NCE and EEP accuracy.
public struct LEEPScore: Sendable, Equatable, Codable {
    /// LEEP = (1/n) Σ_i log EEP_i (Nguyen et al. 2020); ≤ 0, higher predicts better transfer.
    public let leep: Double
    /// NCE = −H(Y | Ẑ) (Tran et al. 2019); ≤ 0.
    public let nce: Double
    /// The share of samples the expected empirical predictor classifies correctly; nil when it
    /// was not computed (`leep score --no-eep-accuracy`).
    public let eepAccuracy: Double?
    /// n, the number of samples.
    public let sampleCount: Int
    /// Z, the number of source classes.
    public let sourceClasses: Int
    /// Y, the number of target classes.
    public let targetClasses: Int
    /// The bounds the joint alone put on `leep` (`LEEPBracket`): lower ≤ leep ≤ upper.
    public let leepLower: Double
    public let leepUpper: Double

    /// Combines the two passes of one run. Both must cover the same samples.
    public init(joint: JointAccumulator, eep: EEPAccumulator, accuracy: Bool = true) {
        precondition(
            joint.sampleCount == eep.sampleCount,
            "pass 1 covered \(joint.sampleCount) samples but pass 2 covered \(eep.sampleCount)")
        precondition(joint.sampleCount > 0, "a score needs at least one sample")
        let n = Double(joint.sampleCount)
        self.leep = eep.logEEPSum / n
        self.nce = joint.negativeConditionalEntropy
        self.eepAccuracy = accuracy ? Double(eep.hits) / n : nil
        self.sampleCount = joint.sampleCount
        self.sourceClasses = joint.sourceClasses
        self.targetClasses = joint.targetClasses
        let bracket = LEEPBracket(joint: joint)!  // n > 0
        self.leepLower = bracket.lower
        self.leepUpper = bracket.upper
    }

    /// The JSON keys of docs/leep.md and `leep score --json`.
    enum CodingKeys: String, CodingKey {
        case leep, nce
        case eepAccuracy = "eep_accuracy"
        case sampleCount = "n"
        case sourceClasses = "source_classes"
        case targetClasses = "target_classes"
        case leepLower = "leep_lower"
        case leepUpper = "leep_upper"
    }
}
