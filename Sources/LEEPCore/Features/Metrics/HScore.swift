import RealModule

/// The H-score (Bao et al. 2019), tr(cov(f)⁺ · cov(E[f | y])), as tllib's `h_score`
/// (tllib/ranking/hscore.py).
struct HScoreMetric: FeatureMetric {
    let key = "hscore"
    let title = "the H-score"
    let requires = [StatisticKind.moments]

    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome {
        hScores(inputs, title).map { [key: $0.hScore] }
    }
}

/// The shrinkage H-score (Ibrahim et al. 2021), tr(cov_α(f)⁺ · (1 − α) cov(E[f | y])) with the
/// Ledoit–Wolf covariance cov_α, as tllib's `regularized_h_score`; α is published beside it.
struct ShrinkageHScoreMetric: FeatureMetric {
    let key = "hscore_shrinkage"
    let companionKeys = ["ledoit_wolf_shrinkage"]
    let title = "the shrinkage H-score"
    let requires = [StatisticKind.moments]

    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome {
        hScores(inputs, title).map { [key: $0.shrinkageHScore, "ledoit_wolf_shrinkage": $0.shrinkage] }
    }
}

/// Both H-scores and α, or why they are undefined.
private func hScores(_ inputs: FeatureMetricInputs, _ title: String) -> HScoreOutcome {
    guard let moments = inputs.statistics[FeatureStatistics.self] else { return .undefined(missing(.moments)) }
    guard moments.sampleCount > 1 else { return .undefined(tooFewSamples(moments.sampleCount, title)) }
    switch inputs.momentSpectrum! {
    case .success(let spectrum):
        let (h, shrunk, alpha) = moments.hScores(
            eigenvalues: spectrum.values, projections: spectrum.projections, classes: spectrum.classes)
        return .scored((h, shrunk, alpha))
    case .failure(let failure):
        return .undefined(.undefined(failure.description))
    }
}

private enum HScoreOutcome {
    case scored((hScore: Double, shrinkageHScore: Double, shrinkage: Double))
    case undefined(MetricOutcome)

    func map(_ transform: ((hScore: Double, shrinkageHScore: Double, shrinkage: Double)) -> [String: Double]) -> MetricOutcome {
        switch self {
        case .scored(let scores): .scored(transform(scores))
        case .undefined(let outcome): outcome
        }
    }
}

extension FeatureStatistics {
    /// The pseudo-inverses drop eigenvalues below rcond·max|λ|, rcond = max(10⁻¹⁰, D·ε).
    /// tllib passes 10⁻¹⁵ to `np.linalg.pinv`. But a float64 eigensolver finds every eigenvalue
    /// to about ε·max|λ|, so one of 10⁻¹² · max carries a relative error near 10⁻⁴ and the term
    /// it divides moves with the order the moments were summed in: a CNN's near-dead ReLU units
    /// (eigenvalues 4.5·10⁻¹³ · max) gave H-scores 10⁻⁸ apart from the pipeline and from
    /// `leep score` on the same rows. Below 10⁻¹⁰ the division is rounding, not data; D·ε
    /// (NumPy's `matrix_rank` tolerance) takes over for very wide features.
    func pseudoInverseCutoff(largest: Double) -> Double {
        max(1e-10, Double(featureWidth) * Double.ulpOfOne) * largest
    }

    /// The H-score as tllib's `h_score`, the shrinkage H-score as its `regularized_h_score`
    /// (Ledoit–Wolf as scikit-learn's `LedoitWolf`), and the shrinkage α, from the eigenpairs
    /// (λ_k, w_k) of M2: cov f = M2/(n−1) has eigenvalues λ_k/(n−1), the Ledoit–Wolf covariance
    /// (1−α)·M2/n + α·(tr(M2/n)/D)·I has the same eigenvectors, and cov E[f|y] =
    /// Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ/(n−1) enters only through the projections w_kᵀ(μ_c − μ).
    func hScores(
        eigenvalues: [Double], projections: [Double], classes present: [Int]
    ) -> (Double, Double, Double) {
        let d = featureWidth
        let n = Double(sampleCount)
        let covariance = eigenvalues.map { $0 / (n - 1) }
        let alpha = ledoitWolfShrinkage()
        let trace = traceOfSquares / n
        let shrunk = eigenvalues.map { (1 - alpha) * $0 / n + alpha * trace / Double(d) }
        let cutoff = pseudoInverseCutoff(largest: covariance.map(abs).max() ?? 0)
        let shrunkCutoff = pseudoInverseCutoff(largest: shrunk.map(abs).max() ?? 0)
        var hScore = 0.0
        var shrinkageHScore = 0.0
        for (row, c) in present.enumerated() {
            // The projections are of n_c(μ_c − μ): (n_c/(n−1))·p²/n_c² = p²/(n_c(n−1)).
            let weight = 1 / (Double(classCounts[c]) * (n - 1))
            for k in 0..<d {
                let p = projections[row * d + k]
                if abs(covariance[k]) > cutoff { hScore += weight * p * p / covariance[k] }
                if abs(shrunk[k]) > shrunkCutoff { shrinkageHScore += weight * (1 - alpha) * p * p / shrunk[k] }
            }
        }
        return (hScore, shrinkageHScore, alpha)
    }

    /// scikit-learn's `ledoit_wolf_shrinkage` of the centred features, from the moments: with
    /// S = M2/n, β = (M4/n − ‖S‖²_F)/(D·n), δ = (‖S‖²_F − (tr S)²/D)/D, α = min(β, δ)/δ
    /// (0 when that minimum is 0, and 0 for one feature).
    func ledoitWolfShrinkage() -> Double {
        let d = featureWidth
        guard d > 1 else { return 0 }
        let n = Double(sampleCount)
        var frobenius = 0.0
        for i in 0..<d {
            frobenius += centredSquares[i * d + i] * centredSquares[i * d + i]
            for j in (i + 1)..<d { frobenius += 2 * centredSquares[i * d + j] * centredSquares[i * d + j] }
        }
        frobenius /= n * n
        let trace = traceOfSquares / n
        let mu = trace / Double(d)
        let beta = (centredFourth / n - frobenius) / (Double(d) * n)
        let delta = (frobenius - 2 * mu * trace + Double(d) * mu * mu) / Double(d)
        let bounded = min(beta, delta)
        return bounded == 0 ? 0 : bounded / delta
    }
}

