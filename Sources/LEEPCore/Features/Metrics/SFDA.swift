import COpenBLAS
import RealModule

/// SFDA (Shao et al., ECCV 2022) as TencentARC/SFDA `metrics.py` `SFDA_Score` defines it, in the
/// three passes over the rows it needs (docs/transferability.md, section 8, derives them):
///
/// 1. the class counts, means and pooled within-class scatter (`WithinClassScatter`) give the
///    first fit: a linear discriminant with S_w = W/n shrunk by s = max(exp(−5 λ̂), 10⁻¹⁰), λ̂
///    from three power iterations on S_w (`iterative_A`);
/// 2. each row x of class y is mixed, x' = p·x + (1 − p)·m̄_y (ConfMix), p its own-class
///    probability under the first fit softened by a second softmax, m̄_y the mean of the other
///    classes' means; the mixed rows' statistics give the second fit, with the first fit's s;
/// 3. SFDA is the mean over rows of the second fit's probability of the row's own class.
///
/// The reference's `eigh(S_b, S_w')` keeps every eigenvector, so its coefficients are
/// μ_c V Vᵀ = μ_c S_w'⁻¹ whatever S_b (and the total scatter) is: here a Cholesky solve with S_w'
/// gives them. Scores are computed about the global mean μ — (x − μ)ᵀS_w'⁻¹(μ_c − μ) −
/// ½(μ_c − μ)ᵀS_w'⁻¹(μ_c − μ) + log π_c differs from the reference's form by a term common to
/// every class, which the softmax cancels — so that a large common offset costs no precision.
public enum SFDA {
    /// The score's key.
    public static let key = "sfda"
    /// The key of the shrinkage s both fits use.
    public static let shrinkageKey = "sfda_shrinkage"
    /// The metric's name for people.
    public static let title = "SFDA"
    /// The floor the reference puts under s.
    static let shrinkageFloor = 1e-10

    /// One fit of the discriminant: the global mean μ; for each present class c the coefficients
    /// S_w'⁻¹(μ_c − μ) and the intercept −½(μ_c − μ)ᵀS_w'⁻¹(μ_c − μ) + log(n_c/n); and the other
    /// classes' mean m̄_c for ConfMix.
    public struct Fit: Sendable, Equatable {
        /// The present target classes, ascending (the reference's `np.unique(y)`).
        public let classes: [Int]
        /// For each label, its position in `classes` (−1 for a class with no sample).
        let position: [Int]
        /// μ (D).
        let centre: [Double]
        /// K×D row-major.
        let coefficients: [Double]
        /// K.
        let intercepts: [Double]
        /// m̄_c, K×D row-major.
        let otherMeans: [Double]
        /// s.
        public let shrinkage: Double
        /// D.
        public let featureWidth: Int

        private init(
            classes: [Int], targetClasses: Int, centre: [Double], coefficients: [Double], intercepts: [Double],
            otherMeans: [Double], shrinkage: Double
        ) {
            self.classes = classes
            position = (0..<targetClasses).map { label in classes.firstIndex(of: label) ?? -1 }
            (self.centre, self.coefficients, self.intercepts) = (centre, coefficients, intercepts)
            (self.otherMeans, self.shrinkage, featureWidth) = (otherMeans, shrinkage, centre.count)
        }

        /// True when the fit knows `label` (a class with samples in pass 1).
        public func knows(_ label: Int32) -> Bool { label >= 0 && Int(label) < position.count && position[Int(label)] >= 0 }

        /// Fits the discriminant to `statistics`, with the given shrinkage or (nil) the adaptive
        /// one; or says why SFDA is undefined for these rows.
        public static func fit(_ statistics: WithinClassScatter, shrinkage given: Double? = nil) -> Result<Fit, SFDAUndefined> {
            let d = statistics.featureWidth
            let n = Double(statistics.sampleCount)
            let classes = (0..<statistics.targetClasses).filter { statistics.classCounts[$0] > 0 }
            guard classes.count >= 2 else {
                return .failure(SFDAUndefined(reason: "SFDA discriminates classes: the run has \(classes.count) class with samples"))
            }
            let means = classes.map { c in Array(statistics.classMeans[(c * d)..<((c + 1) * d)]) }
            var centre = [Double](repeating: 0, count: d)
            for (k, c) in classes.enumerated() {
                let weight = Double(statistics.classCounts[c]) / n
                for j in 0..<d { centre[j] += weight * means[k][j] }
            }
            let centred = means.map { mean in (0..<d).map { mean[$0] - centre[$0] } }
            // S_w = W/n, full; the reference's Σ_c π_c cov_c with population covariances.
            var within = [Double](repeating: 0, count: d * d)
            for i in 0..<d {
                for j in i..<d {
                    within[i * d + j] = statistics.scatters[i * d + j] / n
                    within[j * d + i] = within[i * d + j]
                }
            }
            let trace = (0..<d).reduce(0) { $0 + within[$1 * d + $1] }
            let between = zip(classes, centred).reduce(0.0) { sum, pair in
                sum + Double(statistics.classCounts[pair.0]) / n * pair.1.reduce(0) { $0 + $1 * $1 }
            }
            // Rows that are their class's mean, up to rounding: no discriminant is defined.
            guard trace > Double(d) * Double.ulpOfOne * (trace + between) else {
                return .failure(SFDAUndefined(reason: "the classes have no within-class scatter (every row is its class's mean)"))
            }
            let shrinkage: Double
            if let given {
                shrinkage = given
            } else {
                guard let largest = largestEigenvalue(within, dimension: d) else {
                    return .failure(SFDAUndefined(
                        reason: "the power iteration on the within-class scatter reached a zero vector (its rows sum to 0)"))
                }
                shrinkage = max(Double.exp(-5 * largest), shrinkageFloor)
            }
            var shrunk = within.map { (1 - shrinkage) * $0 }
            for i in 0..<d { shrunk[i * d + i] += shrinkage * trace / Double(d) }
            // Numerically singular: not positive definite to LAPACK, or κ₁ ≥ 1/ε (estimated from
            // the factor in O(D²) rather than from an O(D³) eigenvalue computation).
            guard let factor = Cholesky(upper: shrunk, dimension: d), factor.reciprocalCondition > Double.ulpOfOne else {
                return .failure(SFDAUndefined(
                    reason: "the shrunk within-class scatter (s = \(shrinkage)) is numerically singular"))
            }
            let coefficients = factor.solve(rows: centred.flatMap { $0 }, count: classes.count)
            let intercepts = classes.indices.map { k in
                var quadratic = 0.0
                for j in 0..<d { quadratic += centred[k][j] * coefficients[k * d + j] }
                return -quadratic / 2 + Double.log(Double(statistics.classCounts[classes[k]]) / n)
            }
            var sum = [Double](repeating: 0, count: d)
            for mean in means { for j in 0..<d { sum[j] += mean[j] } }
            let others = Double(classes.count - 1)
            let otherMeans = means.flatMap { mean in (0..<d).map { (sum[$0] - mean[$0]) / others } }
            return .success(Fit(
                classes: classes, targetClasses: statistics.targetClasses, centre: centre, coefficients: coefficients,
                intercepts: intercepts, otherMeans: otherMeans, shrinkage: shrinkage))
        }

        /// The fit as the matrix its tasks share (`ConditionalFrame` parts), (2K + 2) × (D + 1)
        /// row-major: row k < K is class k's coefficients and intercept; row K + k is m̄_k and
        /// the class's label; row 2K is μ and 0; row 2K + 1 is the shrinkage, then zeros.
        public var matrix: (rows: Int, columns: Int, values: [Double]) {
            let (k, d) = (classes.count, featureWidth)
            var values = [Double]()
            values.reserveCapacity((2 * k + 2) * (d + 1))
            for c in 0..<k { values += coefficients[(c * d)..<((c + 1) * d)] + [intercepts[c]] }
            for c in 0..<k { values += otherMeans[(c * d)..<((c + 1) * d)] + [Double(classes[c])] }
            values += centre + [0]
            values += [shrinkage] + repeatElement(0, count: d)
            return (2 * k + 2, d + 1, values)
        }

        /// Reads a fit back from `matrix`; nil unless it is one: finite values, at least 2
        /// classes, labels whole, distinct, ascending, at least 0 and below `WireFormat`'s bound
        /// on class counts (2^26).
        public init?(matrix values: [Double], rows: Int, columns: Int) {
            guard rows >= 6, rows % 2 == 0, columns >= 2, values.count == rows * columns,
                  values.allSatisfy(\.isFinite) else { return nil }
            let (k, d) = ((rows - 2) / 2, columns - 1)
            let labels = (0..<k).map { values[(k + $0) * columns + d] }
            guard labels.allSatisfy({ $0 >= 0 && $0 < Double(1 << 26) && $0 == $0.rounded() }),
                  zip(labels, labels.dropFirst()).allSatisfy({ $0 < $1 }) else { return nil }
            self.init(
                classes: labels.map { Int($0) }, targetClasses: Int(labels.last!) + 1,
                centre: Array(values[(2 * k * columns)..<(2 * k * columns + d)]),
                coefficients: (0..<k).flatMap { values[($0 * columns)..<($0 * columns + d)] },
                intercepts: (0..<k).map { values[$0 * columns + d] },
                otherMeans: (0..<k).flatMap { values[((k + $0) * columns)..<((k + $0) * columns + d)] },
                shrinkage: values[(2 * k + 1) * columns])
        }

        /// `iterative_A`: from the row sums x, three times y = Sx/‖Sx‖, x = Sy/‖Sy‖; then xᵀSy.
        /// Nil when a vector on the way is zero (S with zero row sums, say), where the reference
        /// divides by its zero norm.
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
            let (k, d) = (classes.count, featureWidth)
            var centred = [Double](repeating: 0, count: count * d)
            for i in 0..<count { for j in 0..<d { centred[i * d + j] = rows[i * d + j] - centre[j] } }
            var scores = [Double](repeating: 0, count: count * k)
            BLAS.call { blas in
                blas.dgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), Int32(k), Int32(d), 1, centred,
                    Int32(d), coefficients, Int32(d), 0, &scores, Int32(k))
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

    /// Pass 2 over `chunk`: adds its mixed rows to `mixed`, the second fit's statistics.
    public static func addMixedRows(of chunk: FeatureChunk, first: Fit, to mixed: inout WithinClassScatter) {
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
