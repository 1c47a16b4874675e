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
/// estimates LEEP.
///
/// The 95 % interval carries two noises: the sample's (the mean of k terms stands for that of
/// the m rows merged) and the conditional's (the joint of m rows stands for that of all n), the
/// second by the delta method — each sampled row's influence on LEEP as a function of the joint's
/// sums — with Student's t at k − 1 degrees of freedom. Both are large-sample approximations, so
/// no estimate is made before `minimumRowsMerged` rows are merged. It assumes the rows merged so
/// far are a random subset of the run's rows (rows published in random order);
/// docs/transferability.md measures how often the interval holds.
public struct LEEPEstimate: Sendable, Equatable {
    /// The estimate of the final LEEP.
    public let value: Double
    /// The 95 % interval.
    public let low: Double
    public let high: Double
    /// The sampled rows it used.
    public let sampleSize: Int

    /// Rows merged before an estimate is made, by default: with fewer, the conditional of the
    /// rows so far is too far from the final one for the delta method (measured in
    /// docs/transferability.md: with every row sampled, its intervals cover the final LEEP 70 % of the time under 30 rows, 84 % from 30 to 99,
    /// 94 % from 100 to 299).
    public static let defaultMinimumRowsMerged = 100

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
    /// of `totalRows` rows when known; nil before `minimumRowsMerged` rows are merged, or with
    /// fewer than two usable rows (a row whose label or width does not fit the joint, or whose
    /// expected prediction is 0, is not usable).
    public init?(joint: JointAccumulator, rows: [Row], totalRows: Int?, minimumRowsMerged: Int = defaultMinimumRowsMerged) {
        let merged = joint.sampleCount
        guard merged > 0, merged >= minimumRowsMerged else { return nil }
        let (y, z) = (joint.targetClasses, joint.sourceClasses)
        let sums = joint.jointSums
        var columns = [Double](repeating: 0, count: z)
        for target in 0..<y {
            for source in 0..<z { columns[source] += sums[target * z + source] }
        }
        // The other rows' sums, from m − 1 rows to n − 1.
        let scale = Double(max((totalRows ?? merged) - 1, 0)) / Double(max(merged - 1, 1))
        var used: [Row] = []
        var terms: [Double] = []
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
            if prediction > 0 {
                terms.append(Double.log(prediction))
                used.append(row)
            }
        }
        guard terms.count >= 2 else { return nil }
        let (k, m) = (Double(terms.count), Double(merged))
        let mean = terms.reduce(0, +) / k
        let influence = Self.influence(of: used, terms: terms, mean: mean, sums: sums, columns: columns, merged: m, z: z)
        let sampleVariance = Self.variance(terms) / k * max(0, 1 - k / m)
        let conditionalVariance = Self.variance(influence) / m * (totalRows.map { max(0, 1 - m / Double(max($0, merged))) } ?? 1)
        let half = Self.studentT975(degreesOfFreedom: terms.count - 1) * (sampleVariance + conditionalVariance).squareRoot()
        value = mean
        low = mean - half
        high = mean + half
        sampleSize = terms.count
    }

    /// Each sampled row's influence on LEEP as a function of the distribution of rows:
    /// log p_s − LEEP + Σ_z θ_sz (a(y_s, z) − b(z)) / c(z), with p_s the row's expected
    /// prediction, a(y, z) = mean over the sample of θ_sz [y_s = y] / p_s, b(z) = Σ_y a(y, z)
    /// P(y|z) and c(z) = J(z) / m — the derivative of LEEP through the joint's sums P(y, z) and
    /// P(z) (docs/transferability.md, section 10).
    private static func influence(
        of rows: [Row], terms: [Double], mean: Double, sums: [Double], columns: [Double], merged: Double, z: Int
    ) -> [Double] {
        let y = sums.count / z
        var a = [Double](repeating: 0, count: sums.count)
        for (row, term) in zip(rows, terms) {
            let inverse = 1 / Double.exp(term)
            for source in 0..<z { a[row.label * z + source] += row.probabilities[source] * inverse }
        }
        let k = Double(rows.count)
        var b = [Double](repeating: 0, count: z)
        for source in 0..<z where columns[source] > 0 {
            for target in 0..<y { b[source] += a[target * z + source] / k * sums[target * z + source] / columns[source] }
        }
        return zip(rows, terms).map { row, term in
            var through = 0.0
            for source in 0..<z where columns[source] > 0 {
                through += row.probabilities[source] * (a[row.label * z + source] / k - b[source]) * merged / columns[source]
            }
            return term - mean + through
        }
    }

    private static func variance(_ values: [Double]) -> Double {
        let mean = values.reduce(0, +) / Double(values.count)
        return values.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(values.count - 1)
    }

    /// Student's t at 97.5 %: exact to 1e-12 for 1 to 10 degrees of freedom, then the
    /// Cornish-Fisher expansion around the normal quantile (within 1e-4 from 10 on).
    public static func studentT975(degreesOfFreedom freedom: Int) -> Double {
        let table = [12.706204736174698, 4.302652729749464, 3.182446305284263, 2.7764451051977934, 2.570581835636314,
                     2.4469118511449692, 2.3646242515927844, 2.306004135204166, 2.2621571628540993, 2.2281388519862744]
        if freedom <= table.count { return table[max(freedom, 1) - 1] }
        let (q, v) = (1.959963984540054, Double(freedom))
        let (q3, q5, q7) = (q * q * q, q * q * q * q * q, q * q * q * q * q * q * q)
        return q + (q3 + q) / (4 * v) + (5 * q5 + 16 * q3 + 3 * q) / (96 * v * v)
            + (3 * q7 + 19 * q5 + 17 * q3 - 15 * q) / (384 * v * v * v)
    }
}
