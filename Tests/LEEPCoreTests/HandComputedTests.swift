import Foundation
import LEEPCore
import Testing

/// Small cases worked out by hand from the definitions in docs/leep.md.
@Suite struct HandComputedTests {
    /// θ for four samples over two source classes.
    static let theta: [Double] = [0.8, 0.2, 0.6, 0.4, 0.3, 0.7, 0.1, 0.9]

    func score(theta: [Double], labels: [Int32], targetClasses: Int) throws -> LEEPScore {
        let sourceClasses = theta.count / labels.count
        var joint = JointAccumulator(targetClasses: targetClasses, sourceClasses: sourceClasses)
        var eep = EEPAccumulator()
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                let chunk = PredictionChunk(probabilities: theta, labels: labels, sourceClasses: sourceClasses)
                try joint.add(chunk)
                try eep.add(chunk, conditional: ConditionalTable(joint: joint))
            }
        }
        return LEEPScore(joint: joint, eep: eep)
    }

    @Test func labelsThatFollowTheArgmax() throws {
        // n·P(y, z): y=0 ← rows 0, 1: (1.4, 0.6); y=1 ← rows 2, 3: (0.4, 1.6); n·P(z) = (1.8, 2.2).
        // P(y|z) = [[7/9, 3/11], [2/9, 8/11]]; EEP = (67/99, 19/33, 19/33, 67/99).
        let result = try score(theta: Self.theta, labels: [0, 0, 1, 1], targetClasses: 2)
        let expected = (log(67.0 / 99) + log(19.0 / 33)) / 2
        #expect(isClose(result.leep, expected, relative: 1e-15))
        // ẑ = (0, 0, 1, 1) determines y: H(Y|Ẑ) = 0.
        #expect(result.nce == 0)
        // The predictor's scores per row sum to 1 and the true class wins every row.
        #expect(result.eepAccuracy == 1)
        #expect(result.sampleCount == 4 && result.sourceClasses == 2 && result.targetClasses == 2)
    }

    @Test func labelsThatCrossTheArgmax() throws {
        // n·P(y, z): y=0 ← rows 0, 2: (1.1, 0.9); y=1 ← rows 1, 3: (0.7, 1.3); n·P(z) = (1.8, 2.2).
        let conditional = [[1.1 / 1.8, 0.9 / 2.2], [0.7 / 1.8, 1.3 / 2.2]]
        let labels: [Int32] = [0, 1, 0, 1]
        var logSum = 0.0
        var hits = 0
        for i in 0..<4 {
            let scores = conditional.map { $0[0] * Self.theta[2 * i] + $0[1] * Self.theta[2 * i + 1] }
            logSum += log(scores[Int(labels[i])])
            if (scores[0] >= scores[1] ? 0 : 1) == Int(labels[i]) { hits += 1 }
        }
        let result = try score(theta: Self.theta, labels: labels, targetClasses: 2)
        #expect(isClose(result.leep, logSum / 4, relative: 1e-14))
        // ẑ = (0, 0, 1, 1) against y = (0, 1, 0, 1): every cell holds one sample, H(Y|Ẑ) = log 2.
        #expect(isClose(result.nce, -log(2.0), relative: 1e-15))
        #expect(result.eepAccuracy == Double(hits) / 4)
        #expect(hits == 2)
    }

    @Test func oneSample() throws {
        // n = 1: P(y_1 | z) = 1 wherever θ_1z > 0, so EEP_1 = Σ θ = 1 and LEEP = 0.
        let result = try score(theta: [0.25, 0.75], labels: [0], targetClasses: 1)
        #expect(abs(result.leep) < 1e-15)
        #expect(result.nce == 0 && result.eepAccuracy == 1)
    }

    @Test func sourceClassThatNeverGetsMass() throws {
        // Column 2 is all zeros: P(y|2) = 0 by convention, and the column changes nothing.
        let withEmpty = try score(
            theta: [0.8, 0.2, 0, 0.6, 0.4, 0, 0.3, 0.7, 0, 0.1, 0.9, 0], labels: [0, 0, 1, 1], targetClasses: 2)
        let without = try score(theta: Self.theta, labels: [0, 0, 1, 1], targetClasses: 2)
        #expect(withEmpty.leep == without.leep)
        #expect(withEmpty.nce == without.nce && withEmpty.eepAccuracy == without.eepAccuracy)
        var joint = JointAccumulator(targetClasses: 2, sourceClasses: 3)
        let theta: [Double] = [0.5, 0.5, 0]
        let labels: [Int32] = [1]
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try joint.add(PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 3))
            }
        }
        let table = ConditionalTable(joint: joint)
        #expect(table.probabilities == [0, 0, 0, 1, 1, 0])
    }

    @Test func targetClassWithoutSamples() throws {
        // Y = 3 with no sample of class 2: its row of the joint is zero and changes no score.
        let wide = try score(theta: Self.theta, labels: [0, 0, 1, 1], targetClasses: 3)
        let narrow = try score(theta: Self.theta, labels: [0, 0, 1, 1], targetClasses: 2)
        #expect(wide.leep == narrow.leep && wide.nce == narrow.nce && wide.eepAccuracy == narrow.eepAccuracy)
        #expect(wide.targetClasses == 3)
    }

    @Test func argmaxTiesGoToTheLowestIndex() throws {
        // Both rows tie between columns 0 and 1: ẑ = 0 for both, so c = [[1, 0], [1, 0]] and
        // NCE = 2 · ½ log ½ = −log 2.
        let result = try score(theta: [0.5, 0.5, 0.5, 0.5], labels: [0, 1], targetClasses: 2)
        #expect(isClose(result.nce, -log(2.0), relative: 1e-15))
        // The predictor's scores tie too (½, ½): it predicts class 0, right for one row of two.
        #expect(result.eepAccuracy == 0.5)
    }
}
