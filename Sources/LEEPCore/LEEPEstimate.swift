import RealModule

/// An estimate of a run's final LEEP while its pass 1 streams (docs/transferability.md,
/// "The estimate while pass 1 streams"), from a uniform sample of the rows merged so far, kept
/// verbatim, and the joint of every row merged so far.
///
/// Each sampled row s gets log Σ_z θ_sz P̂(y_s|z) with P̂ the conditional of the joint so far;
/// their mean estimates LEEP, and the interval is mean ± 1.96 standard errors, with the finite
/// population correction when the run's total rows are known. It assumes the rows merged so
/// far are a random subset of the run's rows (rows published in random order) and ignores the
/// noise of P̂ itself; docs/transferability.md measures how often it holds.
public struct LEEPEstimate: Sendable, Equatable {
    /// The estimate of the final LEEP.
    public let value: Double
    /// The 95 % interval.
    public let low: Double
    public let high: Double
    /// The sampled rows it used.
    public let sampleSize: Int

    /// One sampled row: its label and its softmax outputs.
    public struct Row: Sendable, Equatable {
        public let label: Int
        public let probabilities: [Double]

        public init(label: Int, probabilities: [Double]) {
            self.label = label
            self.probabilities = probabilities
        }
    }

    /// The estimate from `rows` (sampled from the rows `joint` counts) and `joint`, for a run
    /// of `totalRows` rows when known; nil with fewer than two usable rows (a row whose label
    /// or width does not fit the joint, or whose expected prediction is 0, is not usable).
    public init?(joint: JointAccumulator, rows: [Row], totalRows: Int?) {
        guard joint.sampleCount > 0 else { return nil }
        let conditional = ConditionalTable(joint: joint)
        let z = joint.sourceClasses
        var terms: [Double] = []
        terms.reserveCapacity(rows.count)
        for row in rows where row.label >= 0 && row.label < joint.targetClasses && row.probabilities.count == z {
            var prediction = 0.0
            let base = row.label * z
            for source in 0..<z { prediction += row.probabilities[source] * conditional.probabilities[base + source] }
            if prediction > 0 { terms.append(Double.log(prediction)) }
        }
        guard terms.count >= 2 else { return nil }
        let count = Double(terms.count)
        let mean = terms.reduce(0, +) / count
        let variance = terms.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / (count - 1)
        let correction = totalRows.map { max(0, 1 - count / Double(max($0, terms.count))) } ?? 1
        let half = 1.959963984540054 * (variance / count * correction).squareRoot()
        value = mean
        low = mean - half
        high = mean + half
        sampleSize = terms.count
    }
}
