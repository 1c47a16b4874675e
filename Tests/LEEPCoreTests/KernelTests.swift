import Foundation
@testable import LEEPCore
import TestSupport
import Testing

/// The shortcuts of the hot loops give exactly what the plain computation gives.
@Suite struct KernelTests {
    /// Σ log xᵢ through a running product equals the sum of per-value logs, including values
    /// that drive the product towards underflow and the irregular ones (0, subnormal).
    @Test(arguments: [UInt64](1...8))
    func logSumEqualsTheSumOfLogs(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var fast = LogSum()
        var plain = 0.0
        for index in 0..<50_000 {
            // Mostly EEP-like values in (0, 1], some tiny ones, an occasional value just above 1.
            let value: Double = switch index % 97 {
            case 0: Double.random(in: 1e-300...1e-200, using: &generator)
            case 1: 1 + Double.random(in: 0...1e-3, using: &generator)
            default: Double.random(in: 1e-6...1, using: &generator)
            }
            fast.add(value)
            plain += Foundation.log(value)
        }
        #expect(abs(fast.total - plain) <= 1e-13 * abs(plain), "\(fast.total) vs \(plain)")

        var irregular = LogSum()
        irregular.add(0.5)
        irregular.add(Double.leastNonzeroMagnitude)
        #expect(abs(irregular.total - (Foundation.log(0.5) + Foundation.log(Double.leastNonzeroMagnitude))) < 1e-12)
        irregular.add(0)
        #expect(irregular.total == -.infinity)
    }

    /// The argmax of a row's summary (`CRowKernels`: eight lanes, then the tail) is the first
    /// column holding the row's maximum, for every row length around the lanes, and the sum and
    /// minimum are the plain ones.
    @Test func argmaxIsTheFirstMaximum() {
        var generator = SeededGenerator(seed: 7)
        for count in [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
            for _ in 0..<200 {
                // Few distinct values, so ties are common.
                let row = (0..<count).map { _ in Float([0, 0.25, 0.5].randomElement(using: &generator)!) }
                let expected = row.firstIndex(of: row.max()!)!
                let summary = row.withUnsafeBufferPointer { Float.summarise($0.baseAddress!, count: count) }
                #expect(summary.argmax == expected, "\(row)")
                #expect(summary.sum == row.reduce(0.0) { $0 + Double($1) })  // quarters: exact in any order
                #expect(summary.minimum == Double(row.min()!))
            }
        }
    }
}

/// `JointAccumulator.addDiscardingOnRefusal`, the one-read pass 1 of `leep score`, against `add`.
@Suite struct OneReadPassTests {
    /// Bit for bit `add`'s sums and counts, row by row (a small joint) and label by label (a
    /// joint over `groupingThreshold`: Y = 20, Z = 7,000 is 1.1 MB), with chunks of many sizes.
    @Test(arguments: [(3, 17, UInt64(1)), (10, 1_000, 2), (20, 7_000, 3)])
    func equalsAddBitForBit(targetClasses: Int, sourceClasses: Int, seed: UInt64) throws {
        var generator = SeededGenerator(seed: seed)
        let run = RandomRun(rows: 150, sourceClasses: sourceClasses, targetClasses: targetClasses, generator: &generator)
        var expected = JointAccumulator(targetClasses: targetClasses, sourceClasses: sourceClasses)
        var oneRead = expected
        var first = 0
        while first < run.rowCount {
            let end = min(run.rowCount, first + Int.random(in: 1...60, using: &generator))
            try run.withChunk(rows: first..<end) { chunk in
                try expected.add(chunk)
                try oneRead.addDiscardingOnRefusal(chunk)
            }
            first = end
        }
        #expect(oneRead == expected)
    }

    /// A chunk with a NaN in row 5 and a label out of range in row 2 (a grouped joint, so the
    /// rows are visited label by label): the refusal names row 2, the first in row order, as
    /// `add` does; with only the NaN, row 5.
    @Test func refusesTheFirstInvalidRowInRowOrder() throws {
        var generator = SeededGenerator(seed: 9)
        var run = RandomRun(rows: 40, sourceClasses: 7_000, targetClasses: 20, generator: &generator)
        run.theta[5 * run.sourceClasses + 3] = .nan
        for labelOutOfRange in [true, false] {
            var chunkRun = run
            if labelOutOfRange { chunkRun.labels[2] = 20 }
            var accumulator = JointAccumulator(targetClasses: 20, sourceClasses: 7_000)
            var reference = accumulator
            let oneRead = chunkRun.withChunk(rows: 0..<40) { chunk in
                #expect(throws: AddError.self) { try accumulator.addDiscardingOnRefusal(chunk) }
                return Result { () throws(AddError) in try accumulator.addDiscardingOnRefusal(chunk) }
            }
            let plain = chunkRun.withChunk(rows: 0..<40) { chunk in
                Result { () throws(AddError) in try reference.add(chunk) }
            }
            guard case .failure(.row(let refused)) = oneRead, case .failure(.row(let expected)) = plain else {
                Issue.record("both must refuse a row")
                continue
            }
            #expect(refused.description == expected.description)  // NaN ≠ NaN: compared as text
            #expect(refused.row == (labelOutOfRange ? 2 : 5))
        }
    }
}
