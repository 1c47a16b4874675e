import Foundation
import LEEPCore
import TestSupport

/// Random softmax outputs with labels that depend on the argmax (so LEEP is informative), in
/// the row-major layout `PredictionChunk` views.
struct RandomRun {
    let targetClasses: Int
    let sourceClasses: Int
    var theta: [Double]
    var labels: [Int32]
    var rowCount: Int { labels.count }

    /// `sharpness` scales the logits: large values give nearly one-hot rows. `labelNoise` is the
    /// share of labels drawn uniformly instead of from the argmax.
    init(
        rows: Int, sourceClasses: Int, targetClasses: Int, sharpness: Double = 3,
        labelNoise: Double = 0.3, generator: inout SeededGenerator
    ) {
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        theta = []
        theta.reserveCapacity(rows * sourceClasses)
        labels = []
        for _ in 0..<rows {
            let logits = (0..<sourceClasses).map { _ in sharpness * Double.random(in: -1...1, using: &generator) }
            let top = logits.max()!
            let weights = logits.map { exp($0 - top) }
            let total = weights.reduce(0, +)
            theta += weights.map { $0 / total }
            let argmax = logits.firstIndex(of: top)!
            let label = Double.random(in: 0..<1, using: &generator) < labelNoise
                ? Int.random(in: 0..<targetClasses, using: &generator)
                : argmax % targetClasses
            labels.append(Int32(label))
        }
    }

    /// Runs `body` with a chunk of rows `range`.
    func withChunk<Result>(
        rows range: Range<Int>, _ body: (PredictionChunk<Double>) throws -> Result
    ) rethrows -> Result {
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try body(PredictionChunk(
                    probabilities: UnsafeBufferPointer(
                        rebasing: theta[(range.lowerBound * sourceClasses)..<(range.upperBound * sourceClasses)]),
                    labels: UnsafeBufferPointer(rebasing: labels[range]),
                    sourceClasses: sourceClasses, firstRow: range.lowerBound))
            }
        }
    }
}

/// Scores a whole run with the accumulators, one chunk per range, in the given order.
func score(_ run: RandomRun, chunks: [Range<Int>]) throws -> LEEPScore {
    var joints: [JointAccumulator] = []
    for range in chunks {
        var joint = JointAccumulator(targetClasses: run.targetClasses, sourceClasses: run.sourceClasses)
        try run.withChunk(rows: range) { try joint.add($0) }
        joints.append(joint)
    }
    var joint = joints[0]
    for other in joints.dropFirst() { try joint.merge(other) }
    let conditional = ConditionalTable(joint: joint)
    var eep = EEPAccumulator()
    for range in chunks.reversed() {
        var part = EEPAccumulator()
        try run.withChunk(rows: range) { try part.add($0, conditional: conditional) }
        eep.merge(part)
    }
    return LEEPScore(joint: joint, eep: eep)
}

/// |a − b| ≤ tolerance · max(|a|, |b|), or both tiny.
func isClose(_ a: Double, _ b: Double, relative tolerance: Double, absolute floor: Double = 1e-14) -> Bool {
    abs(a - b) <= max(tolerance * max(abs(a), abs(b)), floor)
}
