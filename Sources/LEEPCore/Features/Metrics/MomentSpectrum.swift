/// The eigenvalues λ_k of a run's centred M2 and the projections onto its eigenvectors of each
/// present class's centred sum n_c(μ_c − μ) and of μ: what LogME and both H-scores read,
/// computed once per run (`FeatureMetricInputs`).
struct MomentSpectrum {
    /// The target classes with at least one sample, ascending.
    let classes: [Int]
    /// λ, ascending.
    let values: [Double]
    /// Row r (for `classes[r]`) holds w_kᵀ n_c(μ_c − μ); the last row w_kᵀ μ.
    let projections: [Double]
    private let width: Int

    init(_ moments: FeatureStatistics) throws(EigenFailure) {
        let d = moments.featureWidth
        classes = (0..<moments.targetClasses).filter { moments.classCounts[$0] > 0 }
        var rows = [Double]()
        rows.reserveCapacity((classes.count + 1) * d)
        for c in classes {
            let count = Double(moments.classCounts[c])
            rows += (0..<d).map { count * (moments.classMeans[c * d + $0] - moments.mean[$0]) }
        }
        rows += moments.mean
        let spectrum = try SymmetricSpectrum(
            upper: moments.centredSquares, dimension: d, projecting: rows, count: classes.count + 1)
        values = spectrum.values
        projections = spectrum.projections
        width = d
    }

    /// w_kᵀ n_c(μ_c − μ) for `classes[row]`.
    func classProjection(_ row: Int) -> ArraySlice<Double> { projections[(row * width)..<((row + 1) * width)] }

    /// w_kᵀ μ.
    var meanProjection: [Double] { Array(projections[(classes.count * width)...]) }
}
