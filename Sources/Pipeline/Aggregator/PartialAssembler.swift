import LEEPCore
import WireFormat

/// Puts together what travels in parts: a pass-1 partial (joint cells and statistic sections,
/// numbered across both) and an SFDA mixing task's result (its statistics). A whole partial or
/// result comes out once every part is in; a part that cannot come from a worker (another
/// description of the same partial, sums that are not a worker's) is dropped. Part of
/// `RunLedger`'s fold; which partials count is the ledger's rule.
struct PartialAssembler {
    /// The parts of one partial received so far.
    struct PartialParts {
        let chunks: [ChunkID]
        let partCount: UInt32
        let targetClasses: Int
        let shape: RunShape
        let sampleCount: UInt64
        var parts: [UInt32: PartialFrame] = [:]
    }

    private var partials: [UInt64: PartialParts] = [:]
    private var resultParts: [UInt64: [UInt32: TaskResultFrame]] = [:]

    /// What adding a part of a partial did.
    enum Added {
        /// The part describes its partial otherwise than the parts before it: dropped.
        case dropped
        /// Kept; parts of the partial are still missing.
        case incomplete
        /// The partial's last part: the whole partial.
        case whole(PartialParts)
    }

    /// Adds a part of a partial of `shape`.
    mutating func add(_ part: PartialFrame, shape: RunShape) -> Added {
        var partial = partials[part.partialID] ?? PartialParts(
            chunks: part.chunks, partCount: part.part.partCount, targetClasses: part.targetClasses,
            shape: shape, sampleCount: part.sampleCount)
        // Every part of one partial must describe the same partial; a part that does not is
        // ignored (it cannot come from a worker, and mixing it in would corrupt the sums).
        guard part.chunks == partial.chunks, part.part.partCount == partial.partCount,
              part.targetClasses == partial.targetClasses, shape == partial.shape,
              part.sampleCount == partial.sampleCount
        else { return .dropped }
        partial.parts[part.part.partIndex] = part
        guard partial.parts.count == Int(partial.partCount) else {
            partials[part.partialID] = partial
            return .incomplete
        }
        partials[part.partialID] = nil
        return .whole(partial)
    }

    /// Adds a part of a result that carries statistics; returns them once every part is in and
    /// they make statistics of rows (parts that do not, from no worker, are dropped).
    mutating func add(resultPart result: TaskResultFrame) -> WithinClassScatter? {
        let part = result.statistics!
        var parts = resultParts[result.taskID] ?? [:]
        if let first = parts.values.first {
            let known = first.statistics!
            guard known.part.partCount == part.part.partCount, known.targetClasses == part.targetClasses,
                  known.featureWidth == part.featureWidth, first.sampleCount == result.sampleCount
            else { return nil }
        }
        parts[part.part.partIndex] = result
        guard parts.count == Int(part.part.partCount) else {
            resultParts[result.taskID] = parts
            return nil
        }
        resultParts[result.taskID] = nil
        var values = [Double](
            repeating: 0, count: WithinClassScatter.flattenedCount(targetClasses: part.targetClasses, featureWidth: part.featureWidth))
        var filled = 0
        for piece in parts.values.map({ $0.statistics! }) {
            values.replaceSubrange(piece.part.cellStart..<(piece.part.cellStart + piece.part.cellCount), with: piece.values)
            filled += piece.part.cellCount
        }
        guard filled == values.count else { return nil }
        return try? WithinClassScatter(
            flattened: values, sampleCount: Int(result.sampleCount), featureWidth: part.featureWidth,
            targetClasses: part.targetClasses)
    }

    /// A whole partial's joint; nil unless its argmax counts are a worker's: none negative,
    /// one for each of its samples. Counts from anywhere else would make NCE wrong, or overflow
    /// when merged.
    static func joint(of partial: PartialParts) -> JointAccumulator? {
        var sums = [Double](repeating: 0, count: partial.targetClasses * partial.shape.sourceClasses)
        var counts = [Int64](repeating: 0, count: sums.count)
        for part in partial.parts.values where part.section == .joint {
            let cells = part.part.cellStart..<(part.part.cellStart + part.part.cellCount)
            sums.replaceSubrange(cells, with: part.jointSums)
            counts.replaceSubrange(cells, with: part.argmaxCounts)
        }
        let samples = Int64(partial.sampleCount)  // below 2^63: decoding checks it
        var counted: Int64 = 0
        for count in counts {
            guard count >= 0, count <= samples - counted else { return nil }
            counted += count
        }
        guard counted == samples else { return nil }
        // Parts agree on Y and Z (checked as they arrive), so the shape always matches.
        return try? JointAccumulator(
            targetClasses: partial.targetClasses, sourceClasses: partial.shape.sourceClasses,
            sampleCount: Int(samples), jointSums: sums, argmaxCounts: counts)
    }

    /// A whole partial's feature statistics; nil unless it carries exactly the sections a
    /// worker gathers for its shape (`FeatureStatisticSet.plan`), each complete, and each is
    /// statistics of rows (`MergeableStatistic.init(flattened:)` says what it refuses).
    static func featureStatistics(of partial: PartialParts) -> FeatureStatisticSet? {
        let width = partial.shape.featureWidth
        let kinds = FeatureStatisticSet.plan(featureWidth: width, targetClasses: partial.targetClasses)
        var sections = [StatisticKind: [Double]]()
        var filled = [StatisticKind: Int]()
        for kind in kinds {
            sections[kind] = [Double](
                repeating: 0, count: kind.statisticType.flattenedCount(targetClasses: partial.targetClasses, featureWidth: width))
        }
        for part in partial.parts.values {
            guard case .statistic(let kind) = part.section else { continue }
            guard sections[kind] != nil else { return nil }
            let cells = part.part.cellStart..<(part.part.cellStart + part.part.cellCount)
            sections[kind]!.replaceSubrange(cells, with: part.featureValues)
            filled[kind, default: 0] += cells.count
        }
        // Parts are numbered across all sections, so a complete partial may still lack one: a
        // worker always sends every section of its plan.
        guard kinds.allSatisfy({ filled[$0] == sections[$0]!.count }) else { return nil }
        return try? FeatureStatisticSet(
            sections: sections, sampleCount: Int(partial.sampleCount), featureWidth: width,
            targetClasses: partial.targetClasses)
    }
}
