import CBLAS
import RealModule

/// LogME, the H-score and the shrinkage H-score of one (model, data set) pair, each computed
/// exactly from merged `FeatureStatistics` as its reference implementation defines it on the
/// whole feature matrix (docs/transferability.md says which one and every convention).
public struct FeatureScores: Sendable, Equatable, Codable {
    /// LogME (You et al. 2021): the mean over target classes of the maximum log evidence per
    /// sample of a Bayesian linear regression of the class's one-hot column on the features.
    public let logME: Double
    /// H-score (Bao et al. 2019): tr(cov(f)⁺ · cov(E[f | y])).
    public let hScore: Double
    /// The shrinkage H-score (Ibrahim et al. 2021): tr(cov_α(f)⁺ · (1 − α) cov(E[f | y])) with
    /// the Ledoit–Wolf covariance cov_α.
    public let shrinkageHScore: Double
    /// α, Ledoit–Wolf's shrinkage intensity for these features.
    public let shrinkage: Double

    /// Creates scores.
    public init(logME: Double, hScore: Double, shrinkageHScore: Double, shrinkage: Double) {
        self.logME = logME
        self.hScore = hScore
        self.shrinkageHScore = shrinkageHScore
        self.shrinkage = shrinkage
    }

    enum CodingKeys: String, CodingKey {
        case logME = "logme"
        case hScore = "hscore"
        case shrinkageHScore = "hscore_shrinkage"
        case shrinkage = "ledoit_wolf_shrinkage"
    }
}

/// Why feature statistics give no scores.
public enum FeatureScoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// n ≤ 1: a covariance needs two samples.
    case tooFewSamples(Int)
    /// LAPACK failed.
    case eigen(EigenFailure)
    /// A score came out NaN or infinite (the evidence of a class fitted exactly, for example).
    case notFinite(metric: String, value: Double)

    public var description: String {
        switch self {
        case .tooFewSamples(let n):
            "\(n) sample\(n == 1 ? "" : "s"): LogME and the H-scores need at least 2"
        case .eigen(let failure): failure.description
        case .notFinite(let metric, let value): "\(metric) is \(value), not a finite number"
        }
    }
}

extension FeatureStatistics {
    /// The pseudo-inverses drop eigenvalues below rcond·max|λ|, rcond = max(10⁻¹⁵, D·ε):
    /// tllib passes 10⁻¹⁵ to `np.linalg.pinv`; when cov f is singular (D ≥ n) the eigenvalues
    /// that are rounding noise straddle that cutoff, and D·ε (NumPy's `matrix_rank` tolerance)
    /// drops them all, where the exact pseudo-inverse would.
    func pseudoInverseCutoff(largest: Double) -> Double {
        max(1e-15, Double(featureWidth) * Double.ulpOfOne) * largest
    }

    /// The three scores, from M2's eigenvalues and the projections of μ and of each class's
    /// n_c(μ_c − μ) onto its eigenvectors.
    public func scores() throws(FeatureScoreError) -> FeatureScores {
        guard sampleCount > 1 else { throw .tooFewSamples(sampleCount) }
        let present = (0..<targetClasses).filter { classCounts[$0] > 0 }
        // The classes' centred sums e_c = n_c(μ_c − μ), and μ itself, in the eigenbasis of M2.
        var rows = [Double]()
        rows.reserveCapacity((present.count + 1) * featureWidth)
        for c in present {
            let count = Double(classCounts[c])
            rows += (0..<featureWidth).map { count * (classMeans[c * featureWidth + $0] - mean[$0]) }
        }
        rows += mean
        let spectrum: SymmetricSpectrum
        do {
            spectrum = try SymmetricSpectrum(
                upper: centredSquares, dimension: featureWidth, projecting: rows, count: present.count + 1)
        } catch let failure {
            throw .eigen(failure)
        }
        let projections = spectrum.projections
        let basis = CentredBasis(
            eigenvalues: spectrum.values, mean: Array(projections[(present.count * featureWidth)...]),
            sampleCount: Double(sampleCount))
        var logME = 0.0
        for (row, c) in present.enumerated() {
            logME += basis.evidencePerSample(
                centredTargets: projections[(row * featureWidth)..<((row + 1) * featureWidth)],
                classCount: Double(classCounts[c]))
        }
        logME /= Double(present.count)
        let (hScore, shrinkageHScore, shrinkage) = hScores(
            eigenvalues: spectrum.values, projections: projections, classes: present)
        let scores = FeatureScores(
            logME: logME, hScore: hScore, shrinkageHScore: shrinkageHScore, shrinkage: shrinkage)
        for (metric, value) in [("LogME", scores.logME), ("the H-score", scores.hScore),
                                ("the shrinkage H-score", scores.shrinkageHScore)] where !value.isFinite {
            throw .notFinite(metric: metric, value: value)
        }
        return scores
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
