import Foundation
import LEEPCore
import TestSupport
import Testing

/// The bracket of pass 1 (docs/transferability.md): over random joints and rows it holds LEEP,
/// its bounds are the two Jensen sums computed row by row, it does not depend on the chunking,
/// and it closes where the proof says it does.
@Suite struct LEEPBracketTests {
    static func joint(_ run: RandomRun, chunks: [Range<Int>]) throws -> JointAccumulator {
        var merged = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
        for range in chunks {
            var part = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
            try run.withChunk(rows: range) { try part.add($0) }
            try merged.merge(part)
        }
        return merged
    }

    @Test(arguments: PropertyTests.seeds) func theBracketHoldsLEEPAndIsTheRowByRowJensenSums(seed: UInt64) throws {
        let run = PropertyTests.run(seed: seed)
        let leep = try score(run, chunks: [0..<run.rowCount]).leep
        let joint = try Self.joint(run, chunks: [0..<run.rowCount])
        let bracket = try #require(LEEPBracket(joint: joint))
        #expect(bracket.contains(leep), "\(bracket) does not hold \(leep)")
        // The same bounds, row by row: the mean of Σ_z θ_iz log P(y_i|z), and the log of the mean a_i.
        let conditional = ConditionalTable(joint: joint).probabilities
        let (z, n) = (run.sourceClasses, Double(run.rowCount))
        var inside = 0.0
        var across = 0.0
        for row in 0..<run.rowCount {
            let y = Int(run.labels[row])
            for source in 0..<z {
                let (theta, p) = (run.theta[row * z + source], conditional[y * z + source])
                if theta > 0, p > 0 { inside += theta * log(p) }
                across += theta * p
            }
        }
        #expect(isClose(bracket.lower, inside / n, relative: 1e-10))
        #expect(isClose(bracket.upper, log(across / n), relative: 1e-10))
    }

    @Test(arguments: PropertyTests.seeds) func theBracketDoesNotDependOnTheChunking(seed: UInt64) throws {
        let run = PropertyTests.run(seed: seed)
        var generator = SeededGenerator(seed: seed &* 31)
        let cuts = Set([0, run.rowCount] + (0..<6).map { _ in Int.random(in: 0...run.rowCount, using: &generator) }).sorted()
        let chunks = zip(cuts, cuts.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }.shuffled(using: &generator)
        let whole = try #require(LEEPBracket(joint: Self.joint(run, chunks: [0..<run.rowCount])))
        let split = try #require(LEEPBracket(joint: Self.joint(run, chunks: chunks)))
        #expect(isClose(whole.lower, split.lower, relative: 1e-12) && isClose(whole.upper, split.upper, relative: 1e-12))
    }

    /// One-hot θ: every a_i is P(y_i|ẑ_i), and the lower bound is LEEP (Jensen inside is exact);
    /// the upper one is exact only when a_i is the same for every row.
    @Test(arguments: [UInt64(2), 9, 14]) func oneHotRowsCloseTheLowerBound(seed: UInt64) throws {
        var run = PropertyTests.run(seed: seed)
        for row in 0..<run.rowCount {
            let slice = (row * run.sourceClasses)..<((row + 1) * run.sourceClasses)
            let top = run.theta[slice].indices.max { run.theta[$0] < run.theta[$1] }!
            for index in slice { run.theta[index] = index == top ? 1 : 0 }
        }
        let leep = try score(run, chunks: [0..<run.rowCount]).leep
        let bracket = try #require(LEEPBracket(joint: Self.joint(run, chunks: [0..<run.rowCount])))
        #expect(isClose(bracket.lower, leep, relative: 1e-12, absolute: 1e-12))
        #expect(bracket.upper >= leep - 1e-12)
    }

    @Test func labelsDeterminedByTheSourceClosesTheBracketAtZero() throws {
        // Each row puts all its mass on z = y: a_i = 1 for every row, LEEP = 0 = both bounds.
        var joint = JointAccumulator(targetClasses: 3, sourceClasses: 3)
        let theta: [Double] = [1, 0, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0]
        let labels: [Int32] = [0, 1, 2, 0]
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try joint.add(PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 3, firstRow: 0))
            }
        }
        let bracket = try #require(LEEPBracket(joint: joint))
        #expect(bracket.lower == 0 && bracket.upper == 0 && bracket.width == 0)
        #expect(LEEPBracket(joint: JointAccumulator(targetClasses: 2, sourceClasses: 2)) == nil, "no sample, no bracket")
    }
}

/// The estimate while pass 1 streams, against what it estimates.
@Suite struct LEEPEstimateTests {
    static func rows(_ run: RandomRun, _ indices: some Sequence<Int>) -> [LEEPEstimate.Row] {
        indices.map { row in
            LEEPEstimate.Row(
                label: Int(run.labels[row]),
                probabilities: Array(run.theta[(row * run.sourceClasses)..<((row + 1) * run.sourceClasses)]))
        }
    }

    /// Every row sampled from a complete run: the estimate is LEEP, and the interval closes.
    @Test(arguments: PropertyTests.seeds) func aCensusOfACompleteRunIsItsLEEP(seed: UInt64) throws {
        let run = PropertyTests.run(seed: seed)
        guard run.rowCount >= 2 else { return }
        let leep = try score(run, chunks: [0..<run.rowCount]).leep
        let joint = try LEEPBracketTests.joint(run, chunks: [0..<run.rowCount])
        let estimate = try #require(LEEPEstimate(joint: joint, rows: Self.rows(run, 0..<run.rowCount), totalRows: run.rowCount, minimumRowsMerged: 1))
        #expect(isClose(estimate.value, leep, relative: 1e-10, absolute: 1e-12))
        #expect(estimate.low == estimate.value && estimate.high == estimate.value && estimate.sampleSize == run.rowCount)
    }

    @Test func aSampleGivesTheMeanOfItsRowsAndAnIntervalAroundIt() throws {
        let run = PropertyTests.run(seed: 7)
        let joint = try LEEPBracketTests.joint(run, chunks: [0..<run.rowCount])
        let sampled = Array(stride(from: 0, to: run.rowCount, by: 3))
        let estimate = try #require(LEEPEstimate(joint: joint, rows: Self.rows(run, sampled), totalRows: nil, minimumRowsMerged: 1))
        let conditional = ConditionalTable(joint: joint).probabilities
        let z = run.sourceClasses
        let terms = sampled.map { row in
            log((0..<z).reduce(0.0) { $0 + run.theta[row * z + $1] * conditional[Int(run.labels[row]) * z + $1] })
        }
        let mean = terms.reduce(0, +) / Double(terms.count)
        #expect(isClose(estimate.value, mean, relative: 1e-12))
        #expect(estimate.low < mean && mean < estimate.high && estimate.sampleSize == sampled.count)
        // Rows that do not fit the joint are not used; fewer than two usable rows, no estimate.
        let stray = LEEPEstimate.Row(label: run.targetClasses, probabilities: Array(repeating: 1.0 / Double(z), count: z))
        #expect(LEEPEstimate(joint: joint, rows: Self.rows(run, [0]) + [stray], totalRows: nil, minimumRowsMerged: 1) == nil)
        // Before the minimum of rows merged, no estimate at all.
        #expect(LEEPEstimate(joint: joint, rows: Self.rows(run, sampled), totalRows: nil, minimumRowsMerged: run.rowCount + 1) == nil)
    }

    /// LEEP of the rows under weights `weights` (summing to 1), each row's prediction under the
    /// conditional of the weighted joint: the functional whose derivative the interval uses.
    static func weightedLEEP(_ run: RandomRun, _ weights: [Double]) -> Double {
        let (y, z) = (run.targetClasses, run.sourceClasses)
        var sums = [Double](repeating: 0, count: y * z)
        var columns = [Double](repeating: 0, count: z)
        for row in 0..<run.rowCount {
            for source in 0..<z {
                let mass = weights[row] * run.theta[row * z + source]
                sums[Int(run.labels[row]) * z + source] += mass
                columns[source] += mass
            }
        }
        return (0..<run.rowCount).reduce(0.0) { total, row in
            let prediction = (0..<z).reduce(0.0) { sum, source in
                columns[source] > 0 ? sum + run.theta[row * z + source] * sums[Int(run.labels[row]) * z + source] / columns[source] : sum
            }
            return total + weights[row] * log(prediction)
        }
    }

    /// Every row of a run sampled, the run's size unknown: the interval is the conditional's
    /// noise alone, t · sd(influence) / √m, and each row's influence is the derivative of LEEP
    /// when the row's weight grows (taken here by central differences of the weighted LEEP).
    @Test(arguments: PropertyTests.seeds) func theIntervalIsTheDeltaMethodsOverTheRowsInfluence(seed: UInt64) throws {
        let run = PropertyTests.run(seed: seed)
        let m = run.rowCount
        // 2m weighted LEEPs of m rows each: the larger random runs would take the unit tests' time.
        guard m >= 3, m * m * run.sourceClasses <= 600_000 else { return }
        let joint = try LEEPBracketTests.joint(run, chunks: [0..<m])
        let estimate = try #require(LEEPEstimate(joint: joint, rows: Self.rows(run, 0..<m), totalRows: nil, minimumRowsMerged: 1))
        guard estimate.sampleSize == m else { return }  // a row with prediction 0 is left out
        let step = 1e-5
        let influence = (0..<m).map { row in
            let weights = { (epsilon: Double) in (0..<m).map { (1 - epsilon) / Double(m) + ($0 == row ? epsilon : 0) } }
            return (Self.weightedLEEP(run, weights(step)) - Self.weightedLEEP(run, weights(-step))) / (2 * step)
        }
        let mean = influence.reduce(0, +) / Double(m)
        let variance = influence.reduce(0) { $0 + ($1 - mean) * ($1 - mean) } / Double(m - 1)
        let half = LEEPEstimate.studentT975(degreesOfFreedom: m - 1) * (variance / Double(m)).squareRoot()
        #expect(isClose(estimate.high - estimate.value, half, relative: 1e-5, absolute: 1e-9), "seed \(seed)")
        #expect(isClose(estimate.value - estimate.low, half, relative: 1e-5, absolute: 1e-9))
        // Known: all n rows merged and sampled, nothing is left to estimate.
        let census = try #require(LEEPEstimate(joint: joint, rows: Self.rows(run, 0..<m), totalRows: m, minimumRowsMerged: 1))
        #expect(census.low == census.high)
    }

    /// Student's t at 97.5 %, against the published quantiles.
    @Test func studentsQuantileMatchesTheTables() {
        let published: [(Int, Double)] = [(1, 12.7062), (4, 2.7764), (10, 2.2281), (11, 2.2010), (15, 2.1314), (30, 2.0423), (100, 1.9840), (1000, 1.9623)]
        for (freedom, quantile) in published {
            #expect(abs(LEEPEstimate.studentT975(degreesOfFreedom: freedom) - quantile) < 1.5e-4, "\(freedom) degrees of freedom")
        }
    }
}
