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
    /// predictor's argmax. The conditional's rows are contiguous, so each dot product streams.
    @inlinable
    public mutating func add<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, conditional: ConditionalTable
    ) throws(ShapeMismatch) {
        guard chunk.sourceClasses == conditional.sourceClasses else {
            throw ShapeMismatch(
                expected: (conditional.targetClasses, conditional.sourceClasses),
                actual: (conditional.targetClasses, chunk.sourceClasses))
        }
        let z = conditional.sourceClasses
        var chunkLogSum = 0.0
        var chunkHits = 0
        conditional.probabilities.withUnsafeBufferPointer { table in
            for i in 0..<chunk.rowCount {
                let row = chunk.row(i)
                let label = Int(chunk.labels[i])
                var best = 0
                var bestScore = -Double.infinity
                var eep = 0.0
                for y in 0..<conditional.targetClasses {
                    let score = dot(row, table.baseAddress! + y * z, count: z)
                    if score > bestScore {
                        best = y
                        bestScore = score
                    }
                    if y == label { eep = score }
                }
                chunkLogSum += Double.log(eep)
                if best == label { chunkHits += 1 }
            }
        }
        // Summing per chunk first keeps the long sum's rounding error small (blocked summation).
        logSum += chunkLogSum
        hitCount += chunkHits
        samples += chunk.rowCount
    }

    /// Adds the sums of `other`, which covers other samples of the same run.
    public mutating func merge(_ other: EEPAccumulator) {
        samples += other.samples
        logSum += other.logSum
        hitCount += other.hitCount
    }
}

/// Σ_z θ_z c_z in float64, eight lanes at a time.
@inlinable @inline(__always)
func dot<Scalar: ProbabilityScalar>(
    _ theta: UnsafePointer<Scalar>, _ conditional: UnsafePointer<Double>, count: Int
) -> Double {
    var sums = SIMD8<Double>.zero
    var z = 0
    while z + 8 <= count {
        let weights = UnsafeRawPointer(conditional + z).loadUnaligned(as: SIMD8<Double>.self)
        sums.addProduct(widenedLanes(theta + z), weights)
        z += 8
    }
    var sum = sums.sum()
    while z < count {
        sum += Double(theta[z]) * conditional[z]
        z += 1
    }
    return sum
}
