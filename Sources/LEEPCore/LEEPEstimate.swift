import RealModule

/// An estimate of a run's final LEEP while its pass 1 streams (docs/transferability.md,
/// "The estimate while pass 1 streams"), from a uniform sample of the rows merged so far, kept
/// verbatim, and the joint of every row merged so far.
///
/// Each sampled row s gets log Σ_z θ_sz P̃_s(y_s|z), where P̃_s is the conditional the final
/// joint would have if the run's other rows looked like the other rows merged so far: their
/// sums scaled from m − 1 to n − 1 rows, plus the row's own (n, the run's rows once its
/// manifests are in; m otherwise). Without the scaling a row would weigh m/n times too much in
/// its own conditional, and the estimate would be optimistic early on. The mean of the terms
/// estimates LEEP; the interval is mean ± 1.96 standard errors with the finite-population
/// correction. It assumes the rows merged so far are a random subset of the run's rows (rows
/// published in random order) and leaves out the noise of the conditional itself;
/// docs/transferability.md measures how often it holds.
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
        let merged = joint.sampleCount
        guard merged > 0 else { return nil }
        let (y, z) = (joint.targetClasses, joint.sourceClasses)
        let sums = joint.jointSums
        var columns = [Double](repeating: 0, count: z)
        for target in 0..<y {
            for source in 0..<z { columns[source] += sums[target * z + source] }
        }
        // The other rows' sums, from m − 1 rows to n − 1.
        let scale = Double(max((totalRows ?? merged) - 1, 0)) / Double(max(merged - 1, 1))
        var terms: [Double] = []
        terms.reserveCapacity(rows.count)
        for row in rows where row.label >= 0 && row.label < y && row.probabilities.count == z {
            var prediction = 0.0
            let base = row.label * z
            for source in 0..<z {
                let own = row.probabilities[source]
                guard own > 0 else { continue }
                let others = max(0, sums[base + source] - own)
                let column = max(0, columns[source] - own)
                prediction += own * (scale * others + own) / (scale * column + own)
            }
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
