import CBLAS
import RealModule

/// SFDA (Shao et al., ECCV 2022) as TencentARC/SFDA `metrics.py` `SFDA_Score` defines it, in the
/// three passes over the rows it needs (docs/transferability.md derives them):
///
/// 1. the moments (`FeatureStatistics`) give the first fit: a linear discriminant with the
///    within-class scatter S_w shrunk by s = max(exp(−5 λ̂), 10⁻¹⁰), λ̂ from three power
///    iterations on S_w (`iterative_A`);
/// 2. each row x of class y is mixed, x' = p·x + (1 − p)·m̄_y (ConfMix), p its own-class
///    probability under the first fit softened by a second softmax, m̄_y the mean of the other
///    classes' means; the mixed rows' moments give the second fit, with the first fit's s;
/// 3. SFDA is the mean over rows of the second fit's probability of the row's own class.
///
/// The reference's `eigh(S_b, S_w')` keeps every eigenvector, so its coefficients are
/// μ_c V Vᵀ = μ_c S_w'⁻¹ whatever S_b is: here a Cholesky solve with S_w' gives them.
public enum SFDA {
    /// The score's key.
    public static let key = "sfda"
    /// The key of the shrinkage s both fits use.
    public static let shrinkageKey = "sfda_shrinkage"
    /// The metric's name for people.
    public static let title = "SFDA"
    /// The floor the reference puts under s.
    static let shrinkageFloor = 1e-10

    /// One fit of the discriminant: for each present class c, the coefficients S_w'⁻¹μ_c and the
    /// intercept −½ μ_cᵀS_w'⁻¹μ_c + log(n_c/n); and the other classes' mean m̄_c for ConfMix.
    public struct Fit: Sendable {
        /// The present target classes, ascending (the reference's `np.unique(y)`).
        public let classes: [Int]
        /// For each label, its position in `classes` (−1 for a class with no sample).
        let position: [Int]
        /// K×D row-major.
        let coefficients: [Double]
        /// K.
        let intercepts: [Double]
        /// m̄_c, K×D row-major.
        let otherMeans: [Double]
        /// s.
        public let shrinkage: Double
        /// D.
        let featureWidth: Int

        /// Fits the discriminant to `moments`, with the given shrinkage or (nil) the adaptive one.
        public static func fit(_ moments: FeatureStatistics, shrinkage given: Double? = nil) -> Result<Fit, SFDAUndefined> {
            let d = moments.featureWidth
            let n = Double(moments.sampleCount)
            let classes = (0..<moments.targetClasses).filter { moments.classCounts[$0] > 0 }
            guard classes.count >= 2 else {
                return .failure(SFDAUndefined(reason: "SFDA discriminates classes: the run has \(classes.count) class with samples"))
            }
            // S_w = (M2 − Σ_c n_c(μ_c − μ)(μ_c − μ)ᵀ)/n, full.
            var within = [Double](repeating: 0, count: d * d)
            for i in 0..<d {
                for j in i..<d {
                    var between = 0.0
                    for c in classes {
                        between += Double(moments.classCounts[c]) * (moments.classMeans[c * d + i] - moments.mean[i])
                            * (moments.classMeans[c * d + j] - moments.mean[j])
                    }
                    let value = (moments.centredSquares[i * d + j] - between) / n
                    within[i * d + j] = value
                    within[j * d + i] = value
                }
            }
            let shrinkage: Double
            if let given {
                shrinkage = given
            } else {
                guard let largest = largestEigenvalue(within, dimension: d) else {
                    return .failure(SFDAUndefined(reason: "the within-class scatter is zero: every class is a single point"))
                }
                shrinkage = max(Double.exp(-5 * largest), shrinkageFloor)
            }
            let trace = (0..<d).reduce(0) { $0 + within[$1 * d + $1] }
            var shrunk = within.map { (1 - shrinkage) * $0 }
            for i in 0..<d { shrunk[i * d + i] += shrinkage * trace / Double(d) }
            guard let factor = Cholesky(upper: shrunk, dimension: d) else {
                return .failure(SFDAUndefined(reason: "the shrunk within-class scatter (s = \(shrinkage)) is numerically singular"))
            }
            let means = classes.flatMap { c in moments.classMeans[(c * d)..<((c + 1) * d)] }
            let coefficients = factor.solve(rows: means, count: classes.count)
            let intercepts = classes.indices.map { k in
                var quadratic = 0.0
                for j in 0..<d { quadratic += means[k * d + j] * coefficients[k * d + j] }
                return -quadratic / 2 + Double.log(Double(moments.classCounts[classes[k]]) / n)
            }
            var sum = [Double](repeating: 0, count: d)
            for k in classes.indices { for j in 0..<d { sum[j] += means[k * d + j] } }
            let others = Double(classes.count - 1)
            let otherMeans = classes.indices.flatMap { k in (0..<d).map { (sum[$0] - means[k * d + $0]) / others } }
            var position = [Int](repeating: -1, count: moments.targetClasses)
            for (k, c) in classes.enumerated() { position[c] = k }
            return .success(Fit(
                classes: classes, position: position, coefficients: coefficients, intercepts: intercepts,
                otherMeans: otherMeans, shrinkage: shrinkage, featureWidth: d))
        }

        /// `iterative_A`: from the row sums x, three times y = Sx/‖Sx‖, x = Sy/‖Sy‖; then xᵀSy.
        /// Nil when S is zero (the reference divides by a zero norm there).
        static func largestEigenvalue(_ matrix: [Double], dimension d: Int) -> Double? {
            func times(_ v: [Double]) -> [Double] {
                (0..<d).map { i in (0..<d).reduce(0) { $0 + matrix[i * d + $1] * v[$1] } }
            }
            func normalised(_ v: [Double]) -> [Double]? {
                let norm = v.reduce(0) { $0 + $1 * $1 }.squareRoot()
                return norm > 0 ? v.map { $0 / norm } : nil
            }
            var x = (0..<d).map { i in (0..<d).reduce(0) { $0 + matrix[i * d + $1] } }
            var y = x
            for _ in 0..<3 {
                guard let nextY = normalised(times(x)) else { return nil }
                y = nextY
                guard let nextX = normalised(times(y)) else { return nil }
                x = nextX
            }
            let sy = times(y)
            return (0..<d).reduce(0) { $0 + x[$1] * sy[$1] }
        }

        /// The class probabilities of `count` widened rows (count × K), by a softmax of the
        /// discriminant's scores.
        func probabilities(of rows: UnsafePointer<Double>, count: Int) -> [Double] {
            let k = classes.count
            var scores = [Double](repeating: 0, count: count * k)
            BLASLock.run {
                cblas_dgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(k), Int32(featureWidth), 1, rows,
                    Int32(featureWidth), coefficients, Int32(featureWidth), 0, &scores, Int32(k))
            }
            for i in 0..<count {
                for c in 0..<k { scores[i * k + c] += intercepts[c] }
                softmax(&scores[(i * k)..<((i + 1) * k)])
            }
            return scores
        }

        /// ConfMix of `count` widened rows with their labels, in place: x' = p·x + (1 − p)·m̄_y with
        /// p the softened probability of the row's own class.
        func mix(_ rows: UnsafeMutablePointer<Double>, labels: UnsafeBufferPointer<Int32>, count: Int) {
            let k = classes.count
            var probabilities = probabilities(of: rows, count: count)
            let d = featureWidth
            for i in 0..<count {
                // The reference softens the probabilities with a second softmax before mixing.
                softmax(&probabilities[(i * k)..<((i + 1) * k)])
                let own = position[Int(labels[i])]
                let p = probabilities[i * k + own]
                for j in 0..<d { rows[i * d + j] = p * rows[i * d + j] + (1 - p) * otherMeans[own * d + j] }
            }
        }

        /// Σ of each row's probability of its own class.
        func ownClassProbabilitySum(of rows: UnsafePointer<Double>, labels: UnsafeBufferPointer<Int32>, count: Int) -> Double {
            let k = classes.count
            let probabilities = probabilities(of: rows, count: count)
            return (0..<count).reduce(0) { $0 + probabilities[$1 * k + position[Int(labels[$1])]] }
        }
    }

    /// Rows widened at a time in passes 2 and 3.
    static let blockRows = 1024

    /// Pass 2 over `chunk`: adds its mixed rows to `mixed`, the second fit's moments.
    public static func addMixedRows(of chunk: FeatureChunk, first: Fit, to mixed: inout FeatureStatistics) {
        forEachMixedBlock(of: chunk, first: first) { block, labels, count, firstRow in
            let view = FeatureChunk(
                values: .float64(UnsafeBufferPointer(start: block, count: count * chunk.width)), labels: labels,
                width: chunk.width, firstRow: firstRow)
            mixed.addValidated(view)
        }
    }

    /// Pass 3 over `chunk`: Σ of the second fit's probability of each mixed row's own class.
    public static func ownClassProbabilitySum(of chunk: FeatureChunk, first: Fit, second: Fit) -> Double {
        var sum = 0.0
        forEachMixedBlock(of: chunk, first: first) { block, labels, count, _ in
            sum += second.ownClassProbabilitySum(of: block, labels: labels, count: count)
        }
        return sum
    }

    /// Widens and mixes `chunk` block by block.
    private static func forEachMixedBlock(
        of chunk: FeatureChunk, first: Fit,
        _ body: (UnsafeMutablePointer<Double>, UnsafeBufferPointer<Int32>, Int, Int) -> Void
    ) {
        let rows = min(blockRows, chunk.rowCount)
        guard rows > 0 else { return }
        withUnsafeTemporaryAllocation(of: Double.self, capacity: rows * chunk.width) { scratch in
            var start = 0
            while start < chunk.rowCount {
                let count = min(rows, chunk.rowCount - start)
                chunk.widen(rows: start, count: count, into: scratch.baseAddress!)
                let labels = UnsafeBufferPointer(rebasing: chunk.labels[start..<(start + count)])
                first.mix(scratch.baseAddress!, labels: labels, count: count)
                body(scratch.baseAddress!, labels, count, chunk.firstRow + start)
                start += count
            }
        }
    }
}

/// Why SFDA has no value for a run's data.
public struct SFDAUndefined: Error, Sendable, Equatable {
    /// Why.
    public let reason: String
}

/// Replaces `values` by their softmax (the largest subtracted first).
func softmax(_ values: inout ArraySlice<Double>) {
    let largest = values.max() ?? 0
    var total = 0.0
    for i in values.indices {
        values[i] = Double.exp(values[i] - largest)
        total += values[i]
    }
    for i in values.indices { values[i] /= total }
}
