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

    /// The three scores.
    public func scores() throws(FeatureScoreError) -> FeatureScores {
        guard sampleCount > 1 else { throw .tooFewSamples(sampleCount) }
        let (hScore, shrinkageHScore, shrinkage) = try hScoresAndShrinkage()
        let scores = FeatureScores(
            logME: try logMaximumEvidence(), hScore: hScore, shrinkageHScore: shrinkageHScore, shrinkage: shrinkage)
        for (metric, value) in [("LogME", scores.logME), ("the H-score", scores.hScore),
                                ("the shrinkage H-score", scores.shrinkageHScore)] where !value.isFinite {
            throw .notFinite(metric: metric, value: value)
        }
        return scores
    }

    /// LogME as thuml's `log_maximum_evidence` (tllib/ranking/logme.py) computes it, from G =
    /// FᵀF = M2 + nμμᵀ and Fᵀy_c = n_c μ_c instead of F: per class, α = β = 1, at most 11
    /// fixed-point steps stopping when α/β moves by less than 1 %, and the evidence per sample.
    /// A class with no sample is left out of the mean (the reference divides by zero there).
    func logMaximumEvidence() throws(FeatureScoreError) -> Double {
        let d = featureWidth
        let n = Double(sampleCount)
        var gram = centredSquares
        BLASLock.run { cblas_dsyr(CblasRowMajor, CblasUpper, Int32(d), n, mean, 1, &gram, Int32(d)) }
        let eigen: SymmetricEigen
        do { eigen = try SymmetricEigen(upper: gram, dimension: d) } catch { throw .eigen(error) }
        // The reference decomposes G with an SVD: its singular values are |λ|.
        let singular = eigen.values.map(abs)
        let present = (0..<targetClasses).filter { classCounts[$0] > 0 }
        var targets = [Double]()
        targets.reserveCapacity(present.count * d)
        for c in present {
            let count = Double(classCounts[c])
            targets += classMeans[(c * d)..<((c + 1) * d)].map { $0 * count }
        }
        let projections = eigen.project(rows: targets, count: present.count)
        var total = 0.0
        for (row, c) in present.enumerated() {
            total += Self.evidencePerSample(
                projections: projections[(row * d)..<((row + 1) * d)], singular: singular, eigenvalues: eigen.values,
                targetSquares: Double(classCounts[c]), n: n)
        }
        return total / Double(present.count)
    }

    /// One class's evidence / n. With z_k = β·t_k / (α + β s_k) the coordinates of m in the
    /// eigenbasis: ‖m‖² = Σ z_k², and ‖y − Fm‖² = yᵀy − 2 Σ z_k t_k + Σ λ_k z_k².
    private static func evidencePerSample(
        projections t: ArraySlice<Double>, singular s: [Double], eigenvalues lambda: [Double],
        targetSquares: Double, n: Double
    ) -> Double {
        let t = Array(t)
        let d = Double(s.count)
        var alpha = 1.0
        var beta = 1.0
        var ratio = alpha / beta
        var weightSquares = 0.0
        var residual = 0.0
        for _ in 0..<11 {
            var gamma = 0.0
            weightSquares = 0
            var fitted = 0.0
            var quadratic = 0.0
            for k in s.indices {
                gamma += s[k] / (s[k] + ratio)
                let z = beta * t[k] / (alpha + beta * s[k])
                weightSquares += z * z
                fitted += z * t[k]
                quadratic += lambda[k] * z * z
            }
            residual = targetSquares - 2 * fitted + quadratic
            alpha = gamma / weightSquares
            beta = (n - gamma) / residual
            let newRatio = alpha / beta
            if abs(newRatio - ratio) / ratio < 0.01 { break }
            ratio = newRatio
        }
        var logDeterminant = 0.0
        for k in s.indices { logDeterminant += Double.log(alpha + beta * s[k]) }
        let evidence = d / 2 * Double.log(alpha) + n / 2 * Double.log(beta) - logDeterminant / 2
            - beta / 2 * residual - alpha / 2 * weightSquares - n / 2 * Double.log(2 * Double.pi)
        return evidence / n
    }

    /// The H-score as tllib's `h_score`, the shrinkage H-score as its `regularized_h_score`
    /// (Ledoit–Wolf as scikit-learn's `LedoitWolf`), and the shrinkage α. Both traces come from
    /// one eigen-decomposition of cov f = M2/(n−1): the Ledoit–Wolf covariance
    /// (1−α)·M2/n + α·(tr(M2/n)/D)·I has the same eigenvectors, and cov E[f|y] =
    /// Σ_c n_c (μ_c − μ)(μ_c − μ)ᵀ/(n−1) enters only through the projections of μ_c − μ.
    func hScoresAndShrinkage() throws(FeatureScoreError) -> (Double, Double, Double) {
        let d = featureWidth
        let n = Double(sampleCount)
        let covariance = centredSquares.map { $0 / (n - 1) }
        let eigen: SymmetricEigen
        do { eigen = try SymmetricEigen(upper: covariance, dimension: d) } catch { throw .eigen(error) }
        let present = (0..<targetClasses).filter { classCounts[$0] > 0 }
        var offsets = [Double]()
        offsets.reserveCapacity(present.count * d)
        for c in present {
            offsets += (0..<d).map { classMeans[c * d + $0] - mean[$0] }
        }
        let projections = eigen.project(rows: offsets, count: present.count)
        let alpha = ledoitWolfShrinkage()
        let trace = traceOfSquares / n
        let shrunk = eigen.values.map { (1 - alpha) * $0 * (n - 1) / n + alpha * trace / Double(d) }
        let cutoff = pseudoInverseCutoff(largest: eigen.values.map(abs).max() ?? 0)
        let shrunkCutoff = pseudoInverseCutoff(largest: shrunk.map(abs).max() ?? 0)
        var hScore = 0.0
        var shrinkageHScore = 0.0
        for (row, c) in present.enumerated() {
            let weight = Double(classCounts[c]) / (n - 1)
            for k in 0..<d {
                let p = projections[row * d + k]
                if abs(eigen.values[k]) > cutoff { hScore += weight * p * p / eigen.values[k] }
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
