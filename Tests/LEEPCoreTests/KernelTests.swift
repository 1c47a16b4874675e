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

    /// The argmax that validation finds (vector lanes for short rows, a scan for long ones)
    /// is the first column holding the row's maximum, for every row length around the lanes.
    @Test func argmaxIsTheFirstMaximum() {
        var generator = SeededGenerator(seed: 7)
        for count in [1, 2, 7, 8, 9, 15, 16, 17, 63, 64, 65, 200] {
            for _ in 0..<200 {
                // Few distinct values, so ties are common.
                let row = (0..<count).map { _ in Float([0, 0.25, 0.5].randomElement(using: &generator)!) }
                let expected = row.firstIndex(of: row.max()!)!
                let statistics = row.withUnsafeBufferPointer { RowStatistics(of: $0.baseAddress!, count: count) }
                #expect(statistics.argmax == expected, "\(row)")
            }
        }
    }
}
