import LEEPCore

/// `feature-statistics`: the feature statistics as the aggregator meets them (issue 13).
///
/// A script of rows (D ≤ 6 features of bounded size, Y ≤ 4 labels) cut into chunks at chosen
/// points, each chunk's statistics merged in a chosen order: the result must equal the
/// statistics of all rows added at once (normwise 1e-9: the inputs are bounded, so this is
/// rounding), and survive its flat form. Then the script's remaining bytes, read as raw float64
/// values, are offered as the flat form of a partial: `FeatureStatistics(flattened:)` refuses
/// them or accepts them, and whatever it accepts merges and gives scores or a clean error —
/// never a trap, never a non-finite score.
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
        func statistics(_ range: Range<Int>) -> FeatureStatistics {
            var statistics = FeatureStatistics(featureWidth: width, targetClasses: classes)
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
        let merged = parts[0]
        require(merged.sampleCount == rows && merged.classCounts == whole.classCounts, "counts differ after merging")
        for (name, a, b) in [("μ", merged.mean, whole.mean), ("M2", merged.centredSquares, whole.centredSquares),
                             ("class means", merged.classMeans, whole.classMeans)] {
            let scale = max(b.map(abs).max() ?? 0, 1)
            let error = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            require(error <= 1e-9 * scale, "\(name) differs by \(error) (scale \(scale)) after merging")
        }
        let back = try? FeatureStatistics(
            flattened: merged.flattened, sampleCount: rows, featureWidth: width, targetClasses: classes)
        require(back == merged, "the flat form does not round-trip")
        checkScores(of: merged)

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
        checkScores(of: forged)
        checkScores(of: combined)
    }

    /// Scores or a clean error; a score that is not finite must have been refused.
    static func checkScores(of statistics: FeatureStatistics) {
        guard let scores = try? statistics.scores() else { return }
        require(scores.logME.isFinite && scores.hScore.isFinite && scores.shrinkageHScore.isFinite,
                "a non-finite score escaped: \(scores)")
    }
}
