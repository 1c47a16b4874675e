import Foundation
import LEEPCore
import TestSupport
import Testing

/// The statistics behind GBC and TransRate merge exactly in any chunking and order and survive
/// their flat form; the metrics hold the expectations their public projects test them by; a
/// metric undefined for the data says why and leaves the others. The values themselves are
/// checked against the independent float64 reference (Tests/reference/test_new_feature_metrics.py).
@Suite struct FeatureMetricTests {
    /// n rows of D values: class-dependent means around a common offset.
    static func randomRows(seed: UInt64, offset: Double = 0) -> (values: [Double], labels: [Int32], width: Int, classes: Int) {
        var generator = SeededGenerator(seed: seed)
        let rows = Int.random(in: 2...200, using: &generator)
        let width = [1, 3, 8].randomElement(using: &generator)!
        let classes = [1, 2, 4].randomElement(using: &generator)!
        let labels = (0..<rows).map { _ in Int32.random(in: 0..<Int32(classes), using: &generator) }
        let values = labels.flatMap { label in
            (0..<width).map { j in offset + Double(label) * Double(j % 3) + Double.random(in: -1...1, using: &generator) }
        }
        return (values, labels, width, classes)
    }

    @Test(arguments: Array(UInt64(1)...16))
    func chunkedMergesInAnyOrderEqualTheWhole(seed: UInt64) throws {
        let data = Self.randomRows(seed: seed, offset: seed.isMultiple(of: 2) ? 1e4 : 0)
        let whole = try statisticSet(data.values, labels: data.labels, width: data.width, classes: data.classes)
        var generator = SeededGenerator(seed: seed + 100)
        let rows = data.labels.count
        let cuts = Set([0, rows] + (0..<3).map { _ in Int.random(in: 0...rows, using: &generator) }).sorted()
        var parts = try zip(cuts, cuts.dropFirst()).map { start, end in
            try statisticSet(
                Array(data.values[(start * data.width)..<(end * data.width)]), labels: Array(data.labels[start..<end]),
                width: data.width, classes: data.classes)
        }.shuffled(using: &generator)
        var merged = parts.removeFirst()
        for part in parts { try merged.merge(part) }
        #expect(merged.kinds == [.moments, .classVariances, .classScatters] && merged.sampleCount == rows)
        for (mine, theirs) in zip(merged.sections, whole.sections) {
            #expect(normwiseRelativeError(mine.values, theirs.values) < 1e-12, "\(mine.kind)")
        }
        let back = try FeatureStatisticSet(
            sections: Dictionary(uniqueKeysWithValues: merged.sections.map { ($0.kind, $0.values) }), sampleCount: rows,
            featureWidth: data.width, targetClasses: data.classes)
        #expect(back == merged, "the flat forms round-trip")
        let (a, b) = (FeatureMetricReport(statistics: merged), FeatureMetricReport(statistics: whole))
        #expect(a.unscored == b.unscored)
        // LogME is left out: its fixed-point loop stops on a 1 % rule, so rounding-level
        // differences in the statistics can end it one step apart on near-exact fits (the
        // merges it reads are the moments', checked above and in FeatureStatisticsTests).
        for (key, value) in b.values where key != "logme" {
            guard let value, let mine = a.values[key] ?? nil else { continue }
            #expect(abs(mine - value) <= 1e-9 * max(1, abs(value)), "\(key): \(mine) vs \(value)")
        }
    }

    /// Rows gathered into blocks (of any size, across chunk boundaries) are the chunks' rows,
    /// widened exactly: the statistics of the blocks equal those added chunk by chunk.
    @Test(arguments: Array(UInt64(1)...8))
    func gatheredBlocksHoldTheChunksRowsExactly(seed: UInt64) throws {
        let data = Self.randomRows(seed: seed)
        let narrow = data.values.map(Float.init)
        var generator = SeededGenerator(seed: seed + 200)
        let rows = data.labels.count
        let cuts = Set([0, rows] + (0..<4).map { _ in Int.random(in: 0...rows, using: &generator) }).sorted()
        var byChunk = FeatureStatisticSet(featureWidth: data.width, targetClasses: data.classes)
        var byBlock = byChunk
        var gatherer = FeatureRowGatherer(featureWidth: data.width, blockBytes: Int.random(in: 1...2_000, using: &generator))
        let blockLimit = gatherer.blockRows
        var blockRows: [Int32] = []
        var blockValues: [Double] = []
        for (start, end) in zip(cuts, cuts.dropFirst()) {
            narrow[(start * data.width)..<(end * data.width)].withUnsafeBufferPointer { values in
                data.labels[start..<end].withUnsafeBufferPointer { labels in
                    let chunk = FeatureChunk(values: .float32(values), labels: labels, width: data.width, firstRow: start)
                    byChunk.addValidated(chunk)
                    gatherer.append(chunk) { block in
                        #expect(block.rowCount <= blockLimit)
                        byBlock.addValidated(block)
                        blockRows += block.labels
                        if case .float64(let values) = block.values { blockValues += values }
                    }
                }
            }
        }
        gatherer.drain { block in
            byBlock.addValidated(block)
            blockRows += block.labels
            if case .float64(let values) = block.values { blockValues += values }
        }
        #expect(gatherer.rowCount == 0)
        #expect(blockRows == data.labels && blockValues == narrow.map(Double.init), "every row once, in order, exactly")
        for (mine, theirs) in zip(byBlock.sections, byChunk.sections) {
            #expect(normwiseRelativeError(mine.values, theirs.values) < 1e-12, "\(mine.kind)")
        }
    }

    @Test func aStatisticOnlySomePartialsCarryIsDroppedAndItsMetricSaysWhy() throws {
        var all = try statisticSet([0, 1, 2, 3], labels: [0, 0, 1, 1], width: 1, classes: 2)
        // What a shard whose Y put the per-class scatters beyond their bound sends instead.
        var sections = Dictionary(uniqueKeysWithValues: all.sections.filter { $0.kind != .classScatters }.map { ($0.kind, $0.values) })
        sections[.withinClassScatter] = WithinClassScatter(pooling: all[ClassScatters.self]!).flattened
        let withoutScatters = try FeatureStatisticSet(sections: sections, sampleCount: 4, featureWidth: 1, targetClasses: 2)
        try all.merge(withoutScatters)
        #expect(all.kinds == [.moments, .classVariances, .withinClassScatter], "the per-class scatters pooled")
        #expect(all[WithinClassScatter.self]?.sampleCount == 8)
        let report = FeatureMetricReport(statistics: all)
        #expect(report.values["transrate"] == .some(nil))
        #expect(report.unscored["transrate"]?.contains("per-class scatter matrices") == true)
        #expect(report.values["gbc_diagonal"]!.map { _ in true } == true && report.values["hscore"]!.map { _ in true } == true)
    }

    @Test func theClassScattersAreGatheredOnlyWithinTheirBound() {
        #expect(FeatureStatisticSet.plan(featureWidth: 2048, targetClasses: 16).contains(.classScatters))
        #expect(!FeatureStatisticSet.plan(featureWidth: 2048, targetClasses: 17).contains(.classScatters))
        #expect(FeatureStatisticSet.plan(featureWidth: 768, targetClasses: 113) == [.moments, .classVariances, .classScatters])
        #expect(FeatureStatisticSet.plan(featureWidth: 2048, targetClasses: 17) == [.moments, .classVariances, .withinClassScatter])
    }

    @Test func aSelectionGathersOnlyTheStatisticsItsMetricsRead() throws {
        func kinds(_ keys: [String], width: Int = 64, classes: Int = 10) throws -> [StatisticKind] {
            try FeatureMetricSelection(keys: keys).statisticKinds(featureWidth: width, targetClasses: classes)
        }
        #expect(try kinds(["gbc_diagonal"]) == [.classVariances])
        #expect(try kinds(["logme", "hscore"]) == [.moments])
        #expect(try kinds(["sfda"]) == [.withinClassScatter], "SFDA alone gathers the pooled scatter itself")
        #expect(try kinds(["transrate", "sfda"]) == [.classScatters], "and derives it from the per-class ones when they are there")
        #expect(try kinds(["transrate", "sfda"], width: 2048, classes: 17) == [.withinClassScatter])
        #expect(try kinds(["transrate"], width: 2048, classes: 17) == [], "TransRate beyond the bound is unscored")
        #expect(FeatureMetricSelection.all.keys == FeatureMetrics.scoreKeys)
        #expect(throws: UnknownFeatureMetric(key: "gbc")) { try FeatureMetricSelection(keys: ["transrate", "gbc"]) }
    }

    @Test func flatFormsThatNoRowsMakeAreRefused() {
        // Y = 1, D = 1: [count, mean, Σ(f−μ)²] for the variances; the scatters the same shape.
        for kind in [StatisticKind.classVariances, .classScatters] {
            #expect(throws: FeatureStatisticsError.self) {
                try kind.statisticType.init(flattened: [2, 0, -1], sampleCount: 2, featureWidth: 1, targetClasses: 1)
            }
            #expect(throws: FeatureStatisticsError.self) {
                try kind.statisticType.init(flattened: [3, 0, 1], sampleCount: 2, featureWidth: 1, targetClasses: 1)
            }
            #expect(throws: FeatureStatisticsError.self) {
                try kind.statisticType.init(flattened: [2, .nan, 1], sampleCount: 2, featureWidth: 1, targetClasses: 1)
            }
            #expect(throws: FeatureStatisticsError.self) {
                // Two classes, the second empty but with a mean.
                try kind.statisticType.init(flattened: [2, 0, 0, 5, 1, 0], sampleCount: 2, featureWidth: 1, targetClasses: 2)
            }
        }
    }

    // MARK: What the public projects hold the metrics to

    @Test func gbcOfIdenticalClassesIsMinusYTimesYMinusOne() throws {
        // Every class the same rows: each ordered pair's coefficient is exp(0) = 1.
        let rows: [Double] = [0.5, -1, 2, 0.25, 3, 1]
        let values = (0..<4).flatMap { _ in rows }
        let labels = (0..<4).flatMap { c in [Int32](repeating: Int32(c), count: 3) }
        let report = FeatureMetricReport(statistics: try statisticSet(values, labels: labels, width: 2, classes: 4))
        #expect(abs(report.values["gbc_diagonal"]!! + 12) < 1e-12)
        #expect(abs(report.values["gbc_spherical"]!! + 12) < 1e-12)
    }

    @Test func gbcOfWellSeparatedClassesIsNearZero() throws {
        var generator = SeededGenerator(seed: 5)
        let labels = (0..<300).map { Int32($0 % 3) }
        let values = labels.flatMap { label in (0..<4).map { _ in 100 * Double(label) + Double.random(in: -1...1, using: &generator) } }
        let report = FeatureMetricReport(statistics: try statisticSet(values, labels: labels, width: 4, classes: 3))
        #expect(abs(report.values["gbc_diagonal"]!!) < 1e-100 && abs(report.values["gbc_spherical"]!!) < 1e-100)
    }

    @Test func gbcAndTransRateByHand() throws {
        // D = 1, classes {0: 0, 2} and {1: 4, 6}: μ = 1, 5; population variances 1, 1.
        let report = FeatureMetricReport(statistics: try statisticSet([0, 2, 4, 6], labels: [0, 0, 1, 1], width: 1, classes: 2))
        // BD = (1 − 5)²/1/8 + ½(log 1 − ½ log 1 − ½ log 1) = 2; GBC = −2·e⁻².
        #expect(abs(report.values["gbc_diagonal"]!! + 2 * Foundation.exp(-2.0)) < 1e-15)
        // TransRate: f − 3 = [−3, −1, 1, 3]: R(f) = ½ log(1 + 20/(4ε)); classes [−3, −1] and
        // [1, 3]: ½ log(1 + 10/(2ε)) each.
        let epsilon = 1e-4
        let expected = 0.5 * Foundation.log(1 + 20 / (4 * epsilon)) - 0.5 * Foundation.log(1 + 10 / (2 * epsilon))
        #expect(abs(report.values["transrate"]!! - expected) < 1e-12)
    }

    @Test func hScoreOfOneHotFeaturesIsBelowDAndLogMEIsUnboundedButAlone() throws {
        let labels = (0..<60).map { Int32($0 % 5) }
        let values = labels.flatMap { label in (0..<5).map { $0 == Int(label) ? 1.0 : 0.0 } }
        let report = FeatureMetricReport(statistics: try statisticSet(values, labels: labels, width: 5, classes: 5))
        #expect(report.values["logme"] == .some(nil))
        #expect(report.unscored["logme"]?.contains("the evidence is unbounded") == true)
        let h = try #require(report.values["hscore"] ?? nil)
        #expect(h < 5 && abs(h - 4) < 1e-9, "tr(cov⁺ cov) of a rank-4 covariance")
        #expect(report.values["gbc_diagonal"]!.map { _ in true } == true && report.values["transrate"]!.map { _ in true } == true)
    }

    @Test func oneClassHasNoGBCButATransRate() throws {
        let report = FeatureMetricReport(statistics: try statisticSet([0, 1, 3, 4], labels: [0, 0, 0, 0], width: 1, classes: 1))
        #expect(report.unscored["gbc_diagonal"]?.contains("1 class with samples") == true)
        #expect(report.unscored["gbc_spherical"] != nil)
        #expect(abs(report.values["transrate"]!! ) < 1e-12, "R(f) − R(f) of the only class")
    }

    /// A fuzz finding (feature-statistics): a partial whose values are valid but near the float64
    /// limit, merged with honest statistics, overflows to infinities; every metric must then be
    /// unscored with a reason, never a trap and never a non-finite number.
    @Test func statisticsThatOverflowWhenMergedLeaveTheMetricsUnscored() throws {
        var merged = try statisticSet([0, 1, 2, 3], labels: [0, 0, 1, 1], width: 1, classes: 2)
        let huge = try FeatureStatistics(
            flattened: [1, 1, 1e308, 1e308, 0, 0, 1e308, 1e308], sampleCount: 2, featureWidth: 1, targetClasses: 2)
        var moments = merged[FeatureStatistics.self]!
        try moments.merge(huge)
        merged = FeatureStatisticSet([moments])
        let report = FeatureMetricReport(statistics: merged)
        for (key, value) in report.values {
            if let value { #expect(value.isFinite, "\(key)") } else { #expect(report.unscored[key] != nil || key == "ledoit_wolf_shrinkage", "\(key)") }
        }
        #expect(report.values.values.contains { $0 == nil }, "the overflow leaves something unscored")
    }

    @Test func theReportEncodesUndefinedMetricsAsNullWithTheirReason() throws {
        let values: [String: Double?] = ["logme": nil, "hscore": 0.5]
        let report = FeatureMetricReport(values: values, unscored: ["logme": "why"])
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json = String(decoding: try encoder.encode(report), as: UTF8.self)
        #expect(json == #"{"hscore":0.5,"logme":null,"unscored":{"logme":"why"}}"#)
        #expect(try JSONDecoder().decode(FeatureMetricReport.self, from: Data(json.utf8)) == report)
    }
}
