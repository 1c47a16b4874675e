import RealModule

/// LogME (You et al. 2021): the mean over target classes with samples of the maximum log
/// evidence per sample of a Bayesian linear regression of the class's one-hot column on the
/// features, as thuml's `log_maximum_evidence` (tllib/ranking/logme.py) computes it.
struct LogMEMetric: FeatureMetric {
    /// A class is fit exactly when its residual ‖y_c − F m‖² is at most this times n_c (‖y_c‖²):
    /// rounding of float64 sums over up to millions of rows stays far below, a fit that is
    /// not exact far above.
    static let exactFitResidual = 1e-10
    let key = "logme"
    let title = "LogME"
    let requires = [StatisticKind.moments]

    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome {
        guard let moments = inputs.statistics[FeatureStatistics.self] else { return missing(.moments) }
        guard moments.sampleCount > 1 else { return tooFewSamples(moments.sampleCount, title) }
        let spectrum: MomentSpectrum
        switch inputs.momentSpectrum! {
        case .success(let value): spectrum = value
        case .failure(let failure): return .undefined(failure.description)
        }
        let basis = CentredBasis(
            eigenvalues: spectrum.values, mean: spectrum.meanProjection, sampleCount: Double(moments.sampleCount))
        var logME = 0.0
        for (row, c) in spectrum.classes.enumerated() {
            let evidence = basis.evidencePerSample(
                centredTargets: spectrum.classProjection(row), classCount: Double(moments.classCounts[c]))
            // The residual of a class the features fit exactly is 0 and β = (n − γ)/0: thuml's
            // LogME is NaN there too. The evidence grows without bound as the fit tightens;
            // a residual at rounding level counts as 0 (`exactFitResidual`).
            guard evidence.isFinite else {
                return .undefined("the features fit class \(c) exactly: the evidence is unbounded")
            }
            logME += evidence
        }
        return .scored([key: logME / Double(spectrum.classes.count)])
    }
}

/// A metric that needs a covariance has no value for fewer than two samples.
func tooFewSamples(_ n: Int, _ title: String) -> MetricOutcome {
    .undefined("\(n) sample\(n == 1 ? "" : "s"): \(title) needs at least 2")
}

/// LogME's Bayesian linear regression, computed from the eigenpairs (λ_k, w_k) of the centred M2
/// and μ rather than from an eigen-decomposition of G = FᵀF = M2 + nμμᵀ.
///
/// thuml's `log_maximum_evidence` (tllib/ranking/logme.py) decomposes G. Every quantity of its
/// fixed-point iteration is a function of G + λI, which is M2 + λI plus the rank-one nμμᵀ, so
/// Sherman–Morrison and the matrix determinant lemma give each exactly from M2's eigenpairs:
/// the same numbers, without decomposing G. That matters for features with a large common
/// offset: there ‖G‖ is dominated by nμμᵀ, and any float64 decomposition of G loses the small
/// eigenvalues the evidence depends on (LogME up to 8e-8 relative off at offset 1e4 and 7e-7 at
/// 1e5, n = 500, D = 16, against 40-digit arithmetic: docs/transferability.md), while M2 keeps
/// them. With A = M2 + λI, d_k = 1/(λ_k + λ),
/// z = Wᵀμ, q = zᵀdiag(d)z:
/// * γ = tr(G(G+λI)⁻¹) = Σ λ_k d_k + λ·n·Σ d_k² z_k² / (1 + nq) (no cancellation: both ≥ 0);
/// * log det(G + λI) = Σ log(λ_k + λ) + log(1 + nq);
/// * m = (G + λI)⁻¹ Fᵀy_c with Fᵀy_c = e_c + n_c μ, e_c = n_c(μ_c − μ): in the eigenbasis,
///   m = a + c·(n_c − n zᵀa)/(1 + nq) with a = diag(d)Wᵀe_c and c = diag(d)z, and
///   zᵀm = (zᵀa + q n_c)/(1 + nq);
/// * ‖y_c − Fm‖² = n_c − 2mᵀFᵀy_c + mᵀM2m + n(μᵀm)².
struct CentredBasis {
    /// λ_k of M2 (rounding noise below 0 read as 0, as the reference's singular values are).
    let eigenvalues: [Double]
    /// z = Wᵀμ.
    let mean: [Double]
    /// n.
    let sampleCount: Double

    init(eigenvalues: [Double], mean: [Double], sampleCount: Double) {
        self.eigenvalues = eigenvalues.map { max($0, 0) }
        self.mean = mean
        self.sampleCount = sampleCount
    }

    /// One class's evidence / n, by thuml's iteration: α = β = 1, at most 11 steps, stop when
    /// α/β moves by less than 1 %; the evidence with the last α, β and the m they came from.
    func evidencePerSample(centredTargets: ArraySlice<Double>, classCount: Double) -> Double {
        let e = Array(centredTargets)
        let n = sampleCount
        let width = Double(eigenvalues.count)
        var alpha = 1.0
        var beta = 1.0
        var ratio = alpha / beta
        var weightSquares = 0.0
        var residual = 0.0
        for _ in 0..<11 {
            var q = 0.0
            var za = 0.0
            var ownGamma = 0.0
            var cSquares = 0.0
            for k in eigenvalues.indices {
                let d = 1 / (eigenvalues[k] + ratio)
                q += mean[k] * mean[k] * d
                za += mean[k] * e[k] * d
                ownGamma += eigenvalues[k] * d
                cSquares += mean[k] * mean[k] * d * d
            }
            let scale = (classCount - n * za) / (1 + n * q)
            let meanComponent = (za + q * classCount) / (1 + n * q)
            weightSquares = 0
            var fitted = 0.0
            var quadratic = 0.0
            for k in eigenvalues.indices {
                let d = 1 / (eigenvalues[k] + ratio)
                let m = d * e[k] + d * mean[k] * scale
                weightSquares += m * m
                fitted += m * e[k]
                quadratic += eigenvalues[k] * m * m
            }
            fitted += classCount * meanComponent
            quadratic += n * meanComponent * meanComponent
            residual = classCount - 2 * fitted + quadratic
            // A residual at rounding level is an exact fit (features at least as wide as the
            // samples fit every class): what is left of it is the order the sums were added
            // in, so the evidence would differ between two chunkings of the same rows.
            guard residual > LogMEMetric.exactFitResidual * classCount else { return .infinity }
            let gamma = ownGamma + ratio * n * cSquares / (1 + n * q)
            alpha = gamma / weightSquares
            beta = (n - gamma) / residual
            let newRatio = alpha / beta
            if abs(newRatio - ratio) / ratio < 0.01 { ratio = newRatio; break }
            ratio = newRatio
        }
        // Σ_k log(α + β s_k) over G's spectrum = D log β + log det(G + (α/β) I).
        var logDeterminant = 0.0
        var q = 0.0
        for k in eigenvalues.indices {
            logDeterminant += Double.log(eigenvalues[k] + ratio)
            q += mean[k] * mean[k] / (eigenvalues[k] + ratio)
        }
        logDeterminant += width * Double.log(beta) + Double.log(onePlus: n * q)
        let evidence = width / 2 * Double.log(alpha) + n / 2 * Double.log(beta) - logDeterminant / 2
            - beta / 2 * residual - alpha / 2 * weightSquares - n / 2 * Double.log(2 * Double.pi)
        return evidence / n
    }
}
