/// TransRate (Huang et al., ICML 2022) as tllib's `transrate` (tllib/ranking/transrate.py)
/// defines it: with f centred by the global mean and R(Z) = ½ log det(I + ZᵀZ/(n_Z ε)),
/// TransRate = R(f) − (1/K) Σ_c R(f_c), ε = 10⁻⁴, over the K classes with samples (tllib divides
/// by max label + 1, and an empty class divides by zero there). From the per-class scatters:
/// f_cᵀf_c about the global mean is M2_c + n_c(μ_c − μ)(μ_c − μ)ᵀ, and fᵀf is their sum.
struct TransRateMetric: FeatureMetric {
    let key = "transrate"
    let title = "TransRate"
    let requires = [StatisticKind.classScatters]
    /// tllib's default ε, the distortion of the coding rate.
    static let epsilon = 1e-4

    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome {
        guard let statistics = inputs.statistics[ClassScatters.self] else { return missing(.classScatters) }
        let d = statistics.featureWidth
        let n = statistics.sampleCount
        guard n > 0 else { return .undefined("no samples") }
        let classes = (0..<statistics.targetClasses).filter { statistics.classCounts[$0] > 0 }
        var mean = [Double](repeating: 0, count: d)
        for c in classes {
            let weight = Double(statistics.classCounts[c]) / Double(n)
            for j in 0..<d { mean[j] += weight * statistics.classMeans[c * d + j] }
        }
        var total = [Double](repeating: 0, count: d * d)
        var classRates = 0.0
        for c in classes {
            // f_cᵀf_c about μ, upper triangle.
            var gram = Array(statistics.classScatters[(c * d * d)..<((c + 1) * d * d)])
            let count = Double(statistics.classCounts[c])
            let shift = (0..<d).map { statistics.classMeans[c * d + $0] - mean[$0] }
            for i in 0..<d {
                for j in i..<d { gram[i * d + j] += count * shift[i] * shift[j] }
            }
            for k in gram.indices { total[k] += gram[k] }
            guard let rate = codingRate(gram, rows: count, dimension: d) else {
                return .undefined("the coding rate of class \(c) has no Cholesky factor (its Gram matrix is not finite)")
            }
            classRates += rate
        }
        guard let rate = codingRate(total, rows: Double(n), dimension: d) else {
            return .undefined("the coding rate of the features has no Cholesky factor (their Gram matrix is not finite)")
        }
        return .scored([key: rate - classRates / Double(classes.count)])
    }

    /// ½ log det(I + G/(rows·ε)) for G's upper triangle; nil when LAPACK cannot factor it
    /// (I + a positive semi-definite G always can, unless G is not finite).
    private func codingRate(_ gram: [Double], rows: Double, dimension d: Int) -> Double? {
        let scale = 1 / (rows * Self.epsilon)
        var matrix = gram.map { $0 * scale }
        for i in 0..<d { matrix[i * d + i] += 1 }
        return Cholesky(upper: matrix, dimension: d).map { $0.logDeterminant / 2 }
    }
}
