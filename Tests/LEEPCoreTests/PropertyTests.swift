import Foundation
import LEEPCore
import TestSupport
import Testing

/// Invariants of docs/leep.md over random inputs; each case replays from its seed.
@Suite struct PropertyTests {
    static let seeds: [UInt64] = Array(1...24)

    /// A random shape for `seed`: small and large Y and Z, including Y = 1, Y = 2 and Z < 8
    /// (which exercises the scalar tails of the vector loops).
    static func run(seed: UInt64) -> RandomRun {
        var generator = SeededGenerator(seed: seed)
        let rows = Int.random(in: 1...400, using: &generator)
        let sourceClasses = [1, 3, 8, 13, 64, 257].randomElement(using: &generator)!
        let targetClasses = [1, 2, 5, 17].randomElement(using: &generator)!
        let sharpness = [0.1, 2, 8].randomElement(using: &generator)!
        return RandomRun(
            rows: rows, sourceClasses: sourceClasses, targetClasses: targetClasses, sharpness: sharpness,
            generator: &generator)
    }

    @Test(arguments: seeds) func jensenChain(seed: UInt64) throws {
        let run = Self.run(seed: seed)
        let result = try score(run, chunks: [0..<run.rowCount])
        var joint = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
        try run.withChunk(rows: 0..<run.rowCount) { try joint.add($0) }
        let n = Double(run.rowCount)
        let table = ConditionalTable(joint: joint)
        // Σ_{y,z} P(y,z) log P(y|z) and Σ_y P(y) log P(y)
        var conditionalBound = 0.0
        var labelEntropyBound = 0.0
        for y in 0..<run.targetClasses {
            var marginal = 0.0
            for z in 0..<run.sourceClasses {
                let p = joint.jointSums[y * run.sourceClasses + z] / n
                marginal += p
                if p > 0 { conditionalBound += p * log(table.probabilities[y * run.sourceClasses + z]) }
            }
            if marginal > 0 { labelEntropyBound += marginal * log(marginal) }
        }
        let slack = 1e-12
        #expect(result.leep <= slack)
        #expect(result.leep >= conditionalBound - slack)
        #expect(conditionalBound >= labelEntropyBound - slack)
        #expect(result.nce <= slack && result.nce >= labelEntropyBound - slack)
        let accuracy = try #require(result.eepAccuracy)
        #expect(accuracy >= 0 && accuracy <= 1)
    }

    @Test(arguments: seeds) func chunkingAndMergeOrderDoNotMatter(seed: UInt64) throws {
        let run = Self.run(seed: seed)
        let whole = try score(run, chunks: [0..<run.rowCount])
        var generator = SeededGenerator(seed: seed &* 7919)
        // Random cut points, then the chunks in a random order.
        var cuts = Set([0, run.rowCount])
        for _ in 0..<Int.random(in: 0...12, using: &generator) { cuts.insert(Int.random(in: 0...run.rowCount, using: &generator)) }
        let bounds = cuts.sorted()
        let chunks = zip(bounds, bounds.dropFirst()).map { $0..<$1 }.filter { !$0.isEmpty }.shuffled(using: &generator)
        let split = try score(run, chunks: chunks)
        #expect(isClose(split.leep, whole.leep, relative: 1e-12))
        #expect(isClose(split.nce, whole.nce, relative: 1e-12))
        #expect(split.eepAccuracy == whole.eepAccuracy)
        #expect(split.sampleCount == whole.sampleCount)
    }

    @Test(arguments: seeds) func leepWithoutAccuracyIsTheSameLEEP(seed: UInt64) throws {
        // Pass 2 with one dot product a row (the label's) gives the LEEP of the full pass 2.
        let run = Self.run(seed: seed)
        var joint = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
        try run.withChunk(rows: 0..<run.rowCount) { try joint.add($0) }
        let conditional = ConditionalTable(joint: joint)
        var full = EEPAccumulator(), lean = EEPAccumulator()
        try run.withChunk(rows: 0..<run.rowCount) { chunk in
            try full.add(chunk, conditional: conditional)
            try lean.add(chunk, conditional: conditional, accuracy: false)
        }
        #expect(isClose(lean.logEEPSum, full.logEEPSum, relative: 1e-12))
        #expect(lean.hits == 0 && lean.sampleCount == full.sampleCount)
        #expect(LEEPScore(joint: joint, eep: lean, accuracy: false).eepAccuracy == nil)
    }

    @Test(arguments: seeds) func mergeIsAssociativeAndCommutative(seed: UInt64) throws {
        let run = Self.run(seed: seed)
        guard run.rowCount >= 3 else { return }
        let thirds = [0..<(run.rowCount / 3), (run.rowCount / 3)..<(2 * run.rowCount / 3), (2 * run.rowCount / 3)..<run.rowCount]
        let parts = try thirds.map { range in
            var joint = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
            try run.withChunk(rows: range) { try joint.add($0) }
            return joint
        }
        var left = parts[0]
        try left.merge(parts[1])
        try left.merge(parts[2])  // (a + b) + c
        var inner = parts[2]
        try inner.merge(parts[1])
        var right = inner
        try right.merge(parts[0])  // (c + b) + a
        #expect(left.sampleCount == right.sampleCount && left.argmaxCounts == right.argmaxCounts)
        for (a, b) in zip(left.jointSums, right.jointSums) { #expect(isClose(a, b, relative: 1e-12)) }
    }

    @Test(arguments: seeds) func oneHotPredictionsThatDetermineTheLabelScoreZero(seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let sourceClasses = Int.random(in: 1...40, using: &generator)
        let targetClasses = Int.random(in: 1...10, using: &generator)
        // y = f(ẑ) for a random map f: every sample's class is fully determined by its one-hot θ.
        let map = (0..<sourceClasses).map { _ in Int32.random(in: 0..<Int32(targetClasses), using: &generator) }
        var run = RandomRun(rows: 0, sourceClasses: sourceClasses, targetClasses: targetClasses, generator: &generator)
        for _ in 0..<Int.random(in: 1...300, using: &generator) {
            let hot = Int.random(in: 0..<sourceClasses, using: &generator)
            run.theta += (0..<sourceClasses).map { $0 == hot ? 1 : 0 }
            run.labels.append(map[hot])
        }
        let result = try score(run, chunks: [0..<run.rowCount])
        #expect(abs(result.leep) <= 1e-15)
        #expect(abs(result.nce) <= 1e-15)
        #expect(result.eepAccuracy == 1)
    }

    @Test(arguments: [UInt64(3), 5, 8]) func predictionsIndependentOfTheLabelScoreTheLabelEntropy(seed: UInt64) throws {
        // θ the same for every sample: P(y|z) = P(y), so EEP_i = P(y_i) and LEEP = Σ_y P(y) log P(y)
        // exactly; the entropy of the labels is all that is left.
        var generator = SeededGenerator(seed: seed)
        let template = RandomRun(rows: 1, sourceClasses: 12, targetClasses: 4, generator: &generator)
        var run = template
        run.theta = []
        run.labels = []
        var counts = [Double](repeating: 0, count: 4)
        for _ in 0..<500 {
            run.theta += template.theta
            let label = Int32.random(in: 0..<4, using: &generator)
            run.labels.append(label)
            counts[Int(label)] += 1
        }
        let entropy = counts.filter { $0 > 0 }.map { $0 / 500 * log($0 / 500) }.reduce(0, +)
        let result = try score(run, chunks: [0..<250, 250..<500])
        #expect(isClose(result.leep, entropy, relative: 1e-12))
        #expect(isClose(result.nce, entropy, relative: 1e-12))
    }
}
