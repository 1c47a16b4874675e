import COpenBLAS
import RealModule

/// Pass 2 of LEEP: Σ_i log EEP_i and the hits of the expected empirical predictor, where
/// EEP_i = Σ_z θ_iz P(y_i | z) uses the run's *final* conditional (hence the second pass).
///
/// Like `JointAccumulator`, a sum over samples: accumulators of disjoint rows merge by addition.
public struct EEPAccumulator: Sendable, Equatable {
    /// n, the number of samples added so far.
    public var sampleCount: Int { samples }
    /// Σ_i log EEP_i (natural log, float64).
    public var logEEPSum: Double { logSum }
    /// #{i : argmax_y Σ_z θ_iz P(y | z) = y_i}, ties to the lowest y.
    public var hits: Int { hitCount }

    // Stored under other names so that the inlinable `add` may write them while users only read.
    @usableFromInline var samples: Int
    @usableFromInline var logSum: Double
    @usableFromInline var hitCount: Int

    /// An empty accumulator.
    public init() {
        self.init(sampleCount: 0, logEEPSum: 0, hits: 0)
    }

    /// Rebuilds an accumulator from its sums (a result received from another process).
    public init(sampleCount: Int, logEEPSum: Double, hits: Int) {
        self.samples = sampleCount
        self.logSum = logEEPSum
        self.hitCount = hits
    }

    /// Adds every row of `chunk`, which pass 1 has already validated.
    ///
    /// Each row costs Y dot products of length Z: one gives EEP_i, all of them give the
    /// predictor's argmax. The chunk's rows are widened to float64 once and multiplied by the
    /// conditional in one BLAS matrix product, which tiles for the caches.
    ///
    /// With `accuracy` false, only EEP_i is computed: one dot product a row instead of Y, which
    /// is what LEEP itself needs; `hits` then stays 0.
    @inlinable
    public mutating func add<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, conditional: ConditionalTable, accuracy: Bool = true
    ) throws(ShapeMismatch) {
        guard chunk.sourceClasses == conditional.sourceClasses else {
            throw ShapeMismatch(
                expected: (conditional.targetClasses, conditional.sourceClasses),
                actual: (conditional.targetClasses, chunk.sourceClasses))
        }
        guard accuracy else { return addLEEPOnly(chunk, conditional: conditional) }
        // θ widened to float64 once, then every row's Y scores in one matrix product.
        var theta = [Double](repeating: 0, count: chunk.probabilities.count)
        theta.withUnsafeMutableBufferPointer { wide in
            for index in 0..<chunk.probabilities.count { wide[index] = Double(chunk.probabilities[index]) }
        }
        addScores(theta: theta, labels: chunk.labels, conditional: conditional)
    }

    /// S = Θ · P(y|z)ᵀ through BLAS (n×Z by Z×Y), then per row: EEP_i = S[i, y_i] and the
    /// predictor's class argmax_y S[i, y] (ties to the lowest y).
    @usableFromInline
    mutating func addScores(theta: [Double], labels: UnsafeBufferPointer<Int32>, conditional: ConditionalTable) {
        let rows = labels.count
        let y = conditional.targetClasses
        let z = conditional.sourceClasses
        var scores = [Double](repeating: 0, count: rows * y)
        theta.withUnsafeBufferPointer { theta in
            conditional.probabilities.withUnsafeBufferPointer { table in
                scores.withUnsafeMutableBufferPointer { scores in
                    BLAS.call { blas in
                        blas.dgemm(
                            CblasRowMajor, CblasNoTrans, CblasTrans, Int32(rows), Int32(y), Int32(z), 1,
                            theta.baseAddress, Int32(z), table.baseAddress, Int32(z), 0, scores.baseAddress, Int32(y))
                    }
                }
            }
        }
        var chunkLogSum = LogSum()
        var chunkHits = 0
        for i in 0..<rows {
            let row = scores[(i * y)..<((i + 1) * y)]
            var best = row.startIndex
            for index in row.indices where row[index] > row[best] { best = index }
            let label = Int(labels[i])
            chunkLogSum.add(row[row.startIndex + label])  // EEP_i
            if best - row.startIndex == label { chunkHits += 1 }
        }
        // Summing per chunk first keeps the long sum's rounding error small (blocked summation).
        logSum += chunkLogSum.total
        hitCount += chunkHits
        samples += rows
    }

    /// Σ log EEP_i alone: EEP_i = Σ_z θ_iz P(y_i|z), one dot product with the label's row.
    ///
    /// When the conditional is larger than a core's cache (over
    /// `JointAccumulator.groupingThreshold` bytes), the rows are taken label by label, so that
    /// each row of the conditional is fetched from memory once per chunk and label rather than
    /// once per sample; only the order of the terms of Σ log EEP_i changes.
    @inlinable
    mutating func addLEEPOnly<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>, conditional: ConditionalTable) {
        let z = conditional.sourceClasses
        let rowCount = chunk.rowCount
        let grouped = JointAccumulator.addsByLabel(targetClasses: conditional.targetClasses, sourceClasses: z)
        var chunkLogSum = LogSum()
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: grouped ? rowCount : 0) { order in
            if grouped { JointAccumulator.orderByLabel(chunk.labels, targetClasses: conditional.targetClasses, into: order) }
            withUnsafeTemporaryAllocation(of: Double.self, capacity: rowCount) { eeps in
                conditional.probabilities.withUnsafeBufferPointer { table in
                    Scalar.expectedPredictions(
                        chunk.probabilities.baseAddress!, rowCount: rowCount, count: z, labels: chunk.labels.baseAddress!,
                        order: grouped ? UnsafePointer(order.baseAddress) : nil, table: table.baseAddress!,
                        into: eeps.baseAddress!)
                }
                for eep in eeps { chunkLogSum.add(eep) }
            }
        }
        logSum += chunkLogSum.total
        samples += rowCount
    }

    /// Adds the sums of `other`, which covers other samples of the same run.
    public mutating func merge(_ other: EEPAccumulator) {
        samples += other.samples
        logSum += other.logSum
        hitCount += other.hitCount
    }
}
