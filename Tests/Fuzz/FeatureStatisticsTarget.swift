import LEEPCore

/// `feature-statistics`: the feature statistics as the aggregator meets them (issue 13).
///
/// A script of rows (D ≤ 6 features of bounded size, Y ≤ 4 labels) cut into chunks at chosen
/// points, each chunk's statistics (every `StatisticKind`) merged in a chosen order: the result
/// must equal the statistics of all rows added at once (normwise 1e-9 per section: the inputs
/// are bounded, so this is rounding), and survive its flat form. Then the script's remaining
/// bytes, read as raw float64 values, are offered as the flat form of a partial's moments:
/// `FeatureStatistics(flattened:)` refuses them or accepts them, and whatever it accepts merges
/// and gives every metric a finite score or a reason — never a trap, never a non-finite score.
enum FeatureStatisticsTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        var input = FuzzInput(bytes)
        let width = input.int(in: 1...6)
        let classes = input.int(in: 1...4)
        let rows = input.int(in: 1...48)
        var values = [Double]()
        var labels = [Int32]()
        for _ in 0..<rows {
            labels.append(Int32(input.int(in: 0...(classes - 1))))
            // Multiples of 1/64 around a chosen offset: exact in float64, far from overflow.
            let offset = Double(input.int(in: 0...3)) * 1e3
            for _ in 0..<width { values.append(offset + Double(input.int(in: -4096...4096)) / 64) }
        }
        func statistics(_ range: Range<Int>) -> FeatureStatisticSet {
            var statistics = FeatureStatisticSet(featureWidth: width, targetClasses: classes)
            values.withUnsafeBufferPointer { values in
                labels.withUnsafeBufferPointer { labels in
                    let chunk = FeatureChunk(
                        values: .float64(UnsafeBufferPointer(rebasing: values[(range.lowerBound * width)..<(range.upperBound * width)])),
                        labels: UnsafeBufferPointer(rebasing: labels[range]), width: width, firstRow: range.lowerBound)
                    do { try statistics.add(chunk) } catch { require(false, "valid rows refused: \(error)") }
                }
            }
            return statistics
        }
        let whole = statistics(0..<rows)
        var cuts = Set([0, rows])
        for _ in 0..<input.int(in: 0...6) { cuts.insert(input.int(in: 0...rows)) }
        let bounds = cuts.sorted()
        var parts = zip(bounds, bounds.dropFirst()).map { statistics($0..<$1) }
        while parts.count > 1 {
            let first = parts.remove(at: input.int(in: 0...(parts.count - 1)))
            let into = input.int(in: 0...(parts.count - 1))
            do { try parts[into].merge(first) } catch { require(false, "same width refused: \(error)") }
        }
        let mergedSet = parts[0]
        require(mergedSet.sampleCount == rows && mergedSet.kinds == whole.kinds, "counts or kinds differ after merging")
        for (mine, theirs) in zip(mergedSet.sections, whole.sections) {
            let scale = max(theirs.values.map(abs).max() ?? 0, 1)
            let error = zip(mine.values, theirs.values).map { abs($0 - $1) }.max() ?? 0
            require(error <= 1e-9 * scale, "\(mine.kind) differs by \(error) (scale \(scale)) after merging")
        }
        let back = try? FeatureStatisticSet(
            sections: Dictionary(uniqueKeysWithValues: mergedSet.sections.map { ($0.kind, $0.values) }), sampleCount: rows,
            featureWidth: width, targetClasses: classes)
        require(back == mergedSet, "the flat form does not round-trip")
        checkScores(of: mergedSet)
        let merged = mergedSet[FeatureStatistics.self]!

        // The rest, as a partial's flat values: class counts as whole numbers (so that most
        // inputs get past them), everything after them raw float64 — huge, tiny, negative.
        let counts = (0..<classes).map { _ in Double(input.int(in: 0...16)) }
        let count = FeatureStatistics.flattenedCount(targetClasses: classes, featureWidth: width) - classes
        let raw = input.bytes(count: count * 8)
        guard raw.count == count * 8 else { return }
        let flat = counts + (0..<count).map { raw.loadUnaligned(fromByteOffset: $0 * 8, as: Double.self) }
        guard let forged = try? FeatureStatistics(
            flattened: flat, sampleCount: Int(counts.reduce(0, +)), featureWidth: width, targetClasses: classes)
        else { return }
        var combined = merged
        do { try combined.merge(forged) } catch { require(false, "same width refused: \(error)") }
        require(combined.sampleCount == rows + forged.sampleCount, "a forged partial changed the count wrongly")
        // Merging forged values may overflow to infinities: the metrics must say so, not trap.
        for statistics in [forged, combined] { checkScores(of: FeatureStatisticSet([statistics])) }
    }

    /// Every metric a finite score or a reason; a score that is not finite must have been refused.
    static func checkScores(of statistics: FeatureStatisticSet) {
        let report = FeatureMetricReport(statistics: statistics)
        for (key, value) in report.values {
            if let value {
                require(value.isFinite, "a non-finite \(key) escaped: \(value)")
            } else {
                require(report.unscored[key] != nil || !FeatureMetrics.scoreKeys.contains(key), "\(key) is null without a reason")
            }
        }
    }
}
