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
    /// predictor's argmax. Rows are taken four at a time, widened to float64 once, so each
    /// row of the conditional is read once per four samples instead of once per sample.
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
        let z = conditional.sourceClasses
        var chunkLogSum = 0.0
        var chunkHits = 0
        // θ of four rows in float64; rows past the chunk's end stay zero and are ignored.
        var block = [Double](repeating: 0, count: 4 * z)
        conditional.probabilities.withUnsafeBufferPointer { table in
            block.withUnsafeMutableBufferPointer { block in
                var first = 0
                while first < chunk.rowCount {
                    let rows = min(4, chunk.rowCount - first)
                    for r in 0..<4 {
                        let target = block.baseAddress! + r * z
                        if r < rows {
                            let row = chunk.row(first + r)
                            for column in 0..<z { target[column] = Double(row[column]) }
                        } else {
                            target.update(repeating: 0, count: z)
                        }
                    }
                    var labels = SIMD4<Int>(repeating: -1)
                    for r in 0..<rows { labels[r] = Int(chunk.labels[first + r]) }
                    var best = SIMD4<Int>(repeating: 0)
                    var bestScores = SIMD4<Double>(repeating: -.infinity)
                    var eep = SIMD4<Double>.zero
                    for y in 0..<conditional.targetClasses {
                        // s_y = Σ_z θ_iz P(y|z) for the four rows.
                        let scores = dot4(block.baseAddress!, z, table.baseAddress! + y * z)
                        for r in 0..<4 {
                            // Strictly greater: ties go to the lowest y.
                            if scores[r] > bestScores[r] {
                                bestScores[r] = scores[r]
                                best[r] = y
                            }
                            if labels[r] == y { eep[r] = scores[r] }
                        }
                    }
                    for r in 0..<rows {
                        chunkLogSum += Double.log(eep[r])  // log EEP_i
                        if best[r] == labels[r] { chunkHits += 1 }
                    }
                    first += rows
                }
            }
        }
        // Summing per chunk first keeps the long sum's rounding error small (blocked summation).
        logSum += chunkLogSum
        hitCount += chunkHits
        samples += chunk.rowCount
    }

    /// Σ log EEP_i alone: EEP_i = Σ_z θ_iz P(y_i|z), one dot product with the label's row.
    @inlinable
    mutating func addLEEPOnly<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>, conditional: ConditionalTable) {
        let z = conditional.sourceClasses
        var chunkLogSum = 0.0
        conditional.probabilities.withUnsafeBufferPointer { table in
            for i in 0..<chunk.rowCount {
                let row = chunk.row(i)
                let weights = table.baseAddress! + Int(chunk.labels[i]) * z
                var sums = SIMD8<Double>.zero
                var column = 0
                while column + 8 <= z {
                    sums += widenedLanes(row + column) * UnsafeRawPointer(weights + column).loadUnaligned(as: SIMD8<Double>.self)
                    column += 8
                }
                var eep = sums.sum()
                while column < z {
                    eep += Double(row[column]) * weights[column]
                    column += 1
                }
                chunkLogSum += Double.log(eep)
            }
        }
        logSum += chunkLogSum
        samples += chunk.rowCount
    }

    /// Adds the sums of `other`, which covers other samples of the same run.
    public mutating func merge(_ other: EEPAccumulator) {
        samples += other.samples
        logSum += other.logSum
        hitCount += other.hitCount
    }
}

/// The four dot products Σ_z θ_rz c_z of four consecutive rows θ_r (float64, `count` apart)
/// with one row c of the conditional, loaded once for all four.
@inlinable @inline(__always)
func dot4(_ theta: UnsafePointer<Double>, _ count: Int, _ conditional: UnsafePointer<Double>) -> SIMD4<Double> {
    var sums0 = SIMD4<Double>.zero, sums1 = SIMD4<Double>.zero
    var sums2 = SIMD4<Double>.zero, sums3 = SIMD4<Double>.zero
    var z = 0
    while z + 4 <= count {
        let weights = UnsafeRawPointer(conditional + z).loadUnaligned(as: SIMD4<Double>.self)
        sums0 += UnsafeRawPointer(theta + z).loadUnaligned(as: SIMD4<Double>.self) * weights
        sums1 += UnsafeRawPointer(theta + count + z).loadUnaligned(as: SIMD4<Double>.self) * weights
        sums2 += UnsafeRawPointer(theta + 2 * count + z).loadUnaligned(as: SIMD4<Double>.self) * weights
        sums3 += UnsafeRawPointer(theta + 3 * count + z).loadUnaligned(as: SIMD4<Double>.self) * weights
        z += 4
    }
    var result = SIMD4(sums0.sum(), sums1.sum(), sums2.sum(), sums3.sum())
    while z < count {
        let weight = conditional[z]
        result += SIMD4(theta[z], theta[count + z], theta[2 * count + z], theta[3 * count + z]) * weight
        z += 1
    }
    return result
}
