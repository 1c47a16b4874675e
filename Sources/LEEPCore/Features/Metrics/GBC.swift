import RealModule

/// GBC, the Gaussian Bhattacharyya coefficient (Pándy et al., CVPR 2022), as google-research
/// `stable_transfer/transferability/gbc.py` `get_gbc_score` defines it on the features it is
/// given: each present class a Gaussian with its mean and its population variance per feature
/// floored at 10⁻⁴ (diagonal) or their mean (spherical);
/// GBC = −Σ_{c≠c'} exp(−BD(c, c')) over ordered pairs, with the Bhattacharyya distance
/// BD = Σ_j (μ_cj − μ_c'j)²/σ̄_j/8 + ½(Σ log σ̄ − ½Σ log σ_c − ½Σ log σ_c'), σ̄ = (σ_c + σ_c')/2.
/// In the spherical case σ is one number, and the log terms are of it alone (not D times),
/// exactly as the reference computes them. Computed in float64 (the reference in the
/// features' dtype); docs/transferability.md has every convention.
struct GBCMetric: FeatureMetric {
    /// How each class's covariance is modelled.
    enum Gaussian: String {
        case diagonal, spherical
    }

    let gaussian: Gaussian
    var key: String { "gbc_\(gaussian.rawValue)" }
    var title: String { "GBC (\(gaussian.rawValue))" }
    let requires = [StatisticKind.classVariances]
    /// `get_gbc_score`'s floor on a variance ("avoid 0 variance in cases of constant features").
    static let varianceFloor = 1e-4

    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome {
        guard let statistics = inputs.statistics[ClassVariances.self] else { return missing(.classVariances) }
        let d = statistics.featureWidth
        let classes = (0..<statistics.targetClasses).filter { statistics.classCounts[$0] > 0 }
        guard classes.count >= 2 else {
            return .undefined("\(title) compares classes: the run has \(classes.count) class with samples")
        }
        // Each class's floored variances: D of them, or their mean alone.
        let variances = classes.map { c -> [Double] in
            let count = Double(statistics.classCounts[c])
            let floored = (0..<d).map { max(statistics.classSquares[c * d + $0] / count, Self.varianceFloor) }
            return gaussian == .diagonal ? floored : [floored.reduce(0, +) / Double(d)]
        }
        let logVariances = variances.map { $0.reduce(0) { $0 + Double.log($1) } }
        var gbc = 0.0
        for (a, c) in classes.enumerated() {
            for (b, other) in classes.enumerated() where b != a {
                var separation = 0.0
                var logAverage = 0.0
                for k in variances[a].indices {
                    logAverage += Double.log((variances[a][k] + variances[b][k]) / 2)
                }
                for j in 0..<d {
                    let average = variances[a].count == 1
                        ? (variances[a][0] + variances[b][0]) / 2 : (variances[a][j] + variances[b][j]) / 2
                    let gap = statistics.classMeans[c * d + j] - statistics.classMeans[other * d + j]
                    separation += gap * gap / average
                }
                let distance = separation / 8 + 0.5 * (logAverage - 0.5 * logVariances[a] - 0.5 * logVariances[b])
                gbc -= Double.exp(-distance)
            }
        }
        return .scored([key: gbc])
    }
}
