import Foundation
import LEEPCore
import TestSupport
import Testing

/// `FeatureStatistics`: the merged statistics equal the whole data's, computed directly here by
/// two-pass formulas, whatever the chunking and the merge order; and the flat form round-trips.
/// The scores themselves are checked against the independent NumPy reference
/// (Tests/reference/test_feature_cross_check.py).
@Suite struct FeatureStatisticsTests {
    static let seeds: [UInt64] = Array(1...24)

    /// Random features: n rows of D values around a common offset, class-dependent means.
    struct RandomFeatures {
        let rows: Int
        let width: Int
        let targetClasses: Int
        /// The common offset of every feature.
        let offset: Double
        var values: [Double]
        var labels: [Int32]

        init(seed: UInt64, offset: Double? = nil) {
            var generator = SeededGenerator(seed: seed)
            let rows = Int.random(in: 2...300, using: &generator)
            let width = [1, 2, 7, 16, 33].randomElement(using: &generator)!
            let classes = [1, 2, 5].randomElement(using: &generator)!
            let common = offset ?? [0, 3, 1e4].randomElement(using: &generator)!
            let classOffsets = (0..<(classes * width)).map { _ in Double.random(in: -2...2, using: &generator) }
            let labels = (0..<rows).map { _ in Int32.random(in: 0..<Int32(classes), using: &generator) }
            var values = [Double]()
            for i in 0..<rows {
                for j in 0..<width {
                    values.append(common + classOffsets[Int(labels[i]) * width + j] + Double.random(in: -1...1, using: &generator))
                }
            }
            (self.rows, self.width, self.targetClasses, self.offset) = (rows, width, classes, common)
            (self.values, self.labels) = (values, labels)
        }

        func statistics(of rows: Range<Int>) throws -> FeatureStatistics {
            var statistics = FeatureStatistics(featureWidth: width, targetClasses: targetClasses)
            try values.withUnsafeBufferPointer { values in
                try labels.withUnsafeBufferPointer { labels in
                    let chunk = FeatureChunk(
                        values: .float64(UnsafeBufferPointer(rebasing: values[(rows.lowerBound * width)..<(rows.upperBound * width)])),
                        labels: UnsafeBufferPointer(rebasing: labels[rows]), width: width, firstRow: rows.lowerBound)
                    try statistics.add(chunk)
                }
            }
            return statistics
        }

        /// The statistics by the textbook two-pass formulas over all rows (the mean corrected once
        /// by the mean of the residuals, so that a large offset does not leave it off by ε·offset),
        /// and the natural scale of V3's entries, Σ‖u‖³: V3 is a sum of terms that cancel.
        func direct() -> (
            mean: [Double], squares: [Double], cubes: [Double], fourth: Double, classMeans: [Double], counts: [Int],
            cubeScale: Double
        ) {
            let n = Double(rows)
            var mean = [Double](repeating: 0, count: width)
            for i in 0..<rows { for j in 0..<width { mean[j] += values[i * width + j] / n } }
            var correction = [Double](repeating: 0, count: width)
            for i in 0..<rows { for j in 0..<width { correction[j] += (values[i * width + j] - mean[j]) / n } }
            for j in 0..<width { mean[j] += correction[j] }
            var cubeScale = 0.0
            var squares = [Double](repeating: 0, count: width * width)
            var cubes = [Double](repeating: 0, count: width)
            var fourth = 0.0
            var counts = [Int](repeating: 0, count: targetClasses)
            var classSums = [Double](repeating: 0, count: targetClasses * width)
            for i in 0..<rows {
                let u = (0..<width).map { values[i * width + $0] - mean[$0] }
                let norm = u.reduce(0) { $0 + $1 * $1 }
                cubeScale += norm * norm.squareRoot()
                for a in 0..<width {
                    for b in a..<width { squares[a * width + b] += u[a] * u[b] }
                    cubes[a] += norm * u[a]
                }
                fourth += norm * norm
                let y = Int(labels[i])
                counts[y] += 1
                for j in 0..<width { classSums[y * width + j] += values[i * width + j] }
            }
            let classMeans = (0..<(targetClasses * width)).map { index in
                counts[index / width] == 0 ? 0 : classSums[index] / Double(counts[index / width])
            }
            return (mean, squares, cubes, fourth, classMeans, counts, cubeScale)
        }
    }

    /// 1e-12, plus what a common offset K costs any float64 computation: the centre of the data
    /// is itself known only to about ulp(K), and the spread here is about 1, so every merge's
    /// δ = μ_b − μ_a carries that much error (8 ulp(K): 1.5e-11 at K = 1e4).
    static func expectClose(_ statistics: FeatureStatistics, _ data: RandomFeatures) {
        let tolerance = 1e-12 + 8 * data.offset.ulp
        let direct = data.direct()
        #expect(statistics.sampleCount == data.rows)
        #expect(statistics.classCounts == direct.counts)
        #expect(normwiseRelativeError(statistics.mean, direct.mean) < tolerance)
        #expect(normwiseRelativeError(statistics.centredSquares, direct.squares) < tolerance)
        #expect(normwiseRelativeError(statistics.centredCubes, direct.cubes, scale: direct.cubeScale) < tolerance)
        #expect(normwiseRelativeError([statistics.centredFourth], [direct.fourth]) < tolerance)
        #expect(normwiseRelativeError(statistics.classMeans, direct.classMeans) < tolerance)
    }

    @Test(arguments: seeds) func oneChunkGivesTheDirectStatistics(seed: UInt64) throws {
        let data = RandomFeatures(seed: seed)
        Self.expectClose(try data.statistics(of: 0..<data.rows), data)
    }

    @Test(arguments: seeds) func chunkingAndMergeOrderDoNotMatter(seed: UInt64) throws {
        let data = RandomFeatures(seed: seed)
        var generator = SeededGenerator(seed: seed &* 104_729)
        var cuts = Set([0, data.rows])
        for _ in 0..<Int.random(in: 1...10, using: &generator) { cuts.insert(Int.random(in: 0...data.rows, using: &generator)) }
        let bounds = cuts.sorted()
        let parts = try zip(bounds, bounds.dropFirst()).filter { $0 < $1 }.map { try data.statistics(of: $0..<$1) }
        // Merge in a random order, and as a random tree: ((a∪b)∪(c∪d)) as well as a chain.
        var pool = parts.shuffled(using: &generator)
        while pool.count > 1 {
            let i = Int.random(in: 0..<pool.count, using: &generator)
            let first = pool.remove(at: i)
            let j = Int.random(in: 0..<pool.count, using: &generator)
            try pool[j].merge(first)
        }
        Self.expectClose(pool[0], data)
    }

    @Test func aLargeCommonOffsetKeepsItsPrecision() throws {
        // Mean 1e4, spread 1: raw power sums would lose about 8 of 16 digits of M2 here.
        let data = RandomFeatures(seed: 99, offset: 1e4)
        var merged = FeatureStatistics(featureWidth: data.width, targetClasses: data.targetClasses)
        for start in stride(from: 0, to: data.rows, by: 7) {
            try merged.merge(data.statistics(of: start..<min(data.rows, start + 7)))
        }
        Self.expectClose(merged, data)
    }

    @Test func emptyStatisticsMergeAsNothing() throws {
        let data = RandomFeatures(seed: 5)
        var statistics = try data.statistics(of: 0..<data.rows)
        let before = statistics
        try statistics.merge(FeatureStatistics(featureWidth: data.width, targetClasses: data.targetClasses))
        #expect(statistics == before)
        var empty = FeatureStatistics(featureWidth: data.width, targetClasses: 1)
        try empty.merge(before)
        #expect(empty == before)
    }

    @Test func aSmallerYIsWidened() throws {
        var small = FeatureStatistics(featureWidth: 2, targetClasses: 1)
        let values: [Double] = [1, 2, 3, 5]
        let labels: [Int32] = [0, 0]
        try values.withUnsafeBufferPointer { v in
            try labels.withUnsafeBufferPointer { l in try small.add(FeatureChunk(values: .float64(v), labels: l, width: 2)) }
        }
        var large = FeatureStatistics(featureWidth: 2, targetClasses: 3)
        try large.merge(small)
        #expect(large.targetClasses == 3 && large.classCounts == [2, 0, 0] && large.classMeans == [2, 3.5, 0, 0, 0, 0])
    }

    @Test func theFlatFormRoundTrips() throws {
        let data = RandomFeatures(seed: 11)
        let statistics = try data.statistics(of: 0..<data.rows)
        let flat = statistics.flattened
        #expect(flat.count == FeatureStatistics.flattenedCount(targetClasses: data.targetClasses, featureWidth: data.width))
        let back = try FeatureStatistics(
            flattened: flat, sampleCount: data.rows, featureWidth: data.width, targetClasses: data.targetClasses)
        #expect(back == statistics)
    }

    @Test func aFlatFormThatNoRowsMakeIsRefused() throws {
        let data = RandomFeatures(seed: 2)
        let flat = try data.statistics(of: 0..<data.rows).flattened
        func refuses(_ values: [Double], samples: Int? = nil) -> Bool {
            (try? FeatureStatistics(
                flattened: values, sampleCount: samples ?? data.rows, featureWidth: data.width,
                targetClasses: data.targetClasses)) == nil
        }
        #expect(refuses(Array(flat.dropLast())))
        #expect(refuses(flat, samples: data.rows + 1))
        var nan = flat
        nan[data.targetClasses] = .nan
        #expect(refuses(nan))
        var fraction = flat
        fraction[0] += 0.5
        #expect(refuses(fraction))
        // Counts near 2^62 each, whose sum would overflow an Int (a trap, an aggregator down).
        var huge = flat
        for c in 0..<data.targetClasses { huge[c] = 4e18 }
        #expect(refuses(huge))
        #expect(data.targetClasses > 1 && refuses(huge, samples: Int(4e18)))
        var negativeFourth = flat
        negativeFourth[flat.count - data.targetClasses * data.width - 1] = -1
        #expect(refuses(negativeFourth))
    }

    @Test func aNonFiniteFeatureNamesItsRowAndColumnAndAddsNothing() throws {
        var statistics = FeatureStatistics(featureWidth: 3, targetClasses: 2)
        let before = statistics
        let values: [Float] = [0, 1, 2, 3, .infinity, 5]
        let labels: [Int32] = [0, 1]
        #expect(throws: FeatureAddError.row(InvalidRow(row: 41, problem: .featureNotFinite(column: 1, value: .infinity)))) {
            try values.withUnsafeBufferPointer { v in
                try labels.withUnsafeBufferPointer { l in
                    try statistics.add(FeatureChunk(values: .float32(v), labels: l, width: 3, firstRow: 40))
                }
            }
        }
        #expect(statistics == before)
        let description = FeatureAddError.row(InvalidRow(row: 41, problem: .featureNotFinite(column: 1, value: .nan))).description
        #expect(description == "row 41: feature 1 is nan; features must be finite")
    }

    @Test func anotherWidthIsRefused() throws {
        var statistics = FeatureStatistics(featureWidth: 3, targetClasses: 2)
        let values: [Double] = [0, 1]
        let labels: [Int32] = [0]
        #expect(throws: FeatureAddError.width(expected: 3, actual: 2)) {
            try values.withUnsafeBufferPointer { v in
                try labels.withUnsafeBufferPointer { l in try statistics.add(FeatureChunk(values: .float64(v), labels: l, width: 2)) }
            }
        }
        #expect(throws: FeatureWidthMismatch(expected: 3, actual: 2)) {
            try statistics.merge(FeatureStatistics(featureWidth: 2, targetClasses: 2))
        }
    }

    @Test func oneSampleLeavesEveryCovarianceMetricUnscored() throws {
        let report = FeatureMetricReport(statistics: try statisticSet([1, 2], labels: [0], width: 2, classes: 1))
        for key in ["logme", "hscore", "hscore_shrinkage"] {
            #expect(report.values[key] == .some(nil), "\(key)")
            #expect(report.unscored[key]?.contains("1 sample") == true, "\(key): \(report.unscored[key] ?? "")")
        }
        #expect(report.unscored["gbc_diagonal"]?.contains("1 class") == true)
    }

    @Test func hScoreOfOneFeatureByHand() throws {
        // D = 1: H = var(E[f|y]) / var(f) with both unbiased; classes {0: 0, 2}, {1: 4, 6}.
        let report = FeatureMetricReport(statistics: try statisticSet([0, 2, 4, 6], labels: [0, 0, 1, 1], width: 1, classes: 2))
        // var f = 20/3; g = [1, 1, 5, 5], var g = 16/3.
        #expect(abs(report.values["hscore"]!! - 0.8) < 1e-15)
        // One feature: no shrinkage, cov_α = var f biased = 5; (1 − 0)·(16/3)/5.
        #expect(report.values["ledoit_wolf_shrinkage"]!! == 0)
        #expect(abs(report.values["hscore_shrinkage"]!! - 16.0 / 15.0) < 1e-15)
    }
}

/// Every statistic of `values` (rows of `width`) with `labels`, added at once.
func statisticSet(_ values: [Double], labels: [Int32], width: Int, classes: Int) throws -> FeatureStatisticSet {
    var statistics = FeatureStatisticSet(featureWidth: width, targetClasses: classes)
    try values.withUnsafeBufferPointer { v in
        try labels.withUnsafeBufferPointer { l in try statistics.add(FeatureChunk(values: .float64(v), labels: l, width: width)) }
    }
    return statistics
}
