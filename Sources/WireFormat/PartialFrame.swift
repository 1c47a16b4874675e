import LEEPCore

/// Kind 3: one part of a worker's pass-1 partial sums for a run — the joint sums and NCE counts
/// of exactly the chunks it lists, and, for a run with features, their feature statistics.
/// Every part lists all the partial's chunks, so the aggregator can tell a partial's coverage
/// from any of its parts. Version 2 carries the run's model and data-set names, from its chunks,
/// so that a run the aggregator knows only from partials is reported under its names (version-1
/// frames read with empty names). Version 3 (this build's) adds the feature width and a
/// `section` to each part: the joint cells (section 0) or one feature statistic (section
/// 1, the moments, and since issue 19 sections 2 to 4, the per-class variances and scatters and
/// the within-class scatter: `StatisticKind`). A section code this build does not know is
/// refused like any malformed frame, so aggregators are upgraded before workers
/// (docs/wire-format.md). Versions 1 and 2 read as feature-less, section-0 parts. A run of
/// features alone (Z = 0) has no joint cells: its partials are statistic parts only.
public struct PartialFrame: Sendable, Equatable {
    /// The run id.
    public let run: String
    /// The source model's name, as the chunks gave it (empty in a version-1 frame).
    public let model: String
    /// The target data set's name, as the chunks gave it (empty in a version-1 frame).
    public let dataset: String
    /// Deterministic for the chunk set, so a partial flushed twice is recognised.
    public let partialID: UInt64
    /// Y of the sums (a worker uses the Y its chunks carry; the aggregator widens).
    public let targetClasses: Int
    /// Z; 0 for a run of features alone (then `featureWidth` ≥ 1 and every part is section 1).
    public let sourceClasses: Int
    /// D, the features a row of the run's chunks; 0 when the run has none (and in frames of
    /// versions 1 and 2).
    public let featureWidth: Int
    /// The samples the whole partial covers.
    public let sampleCount: UInt64
    /// The chunks the whole partial covers.
    public let chunks: [ChunkID]
    /// This part: `partIndex` and `partCount` number all parts of the partial, both sections
    /// together; `cellStart` and `cellCount` are a range within this part's `section`.
    public let part: MatrixPart
    /// What the part carries.
    public let section: Section
    /// n·P(y, z) sums for the part's cells (section 0; empty in a section-1 part).
    public let jointSums: [Double]
    /// NCE's argmax counts for the part's cells (section 0; empty in a section-1 part).
    public let argmaxCounts: [Int64]
    /// The part's range of one feature statistic's flat vector (sections ≥ 1; empty in a
    /// section-0 part), as LEEPCore lays it out (`MergeableStatistic.flattened`).
    public let featureValues: [Double]

    /// What a part of a partial carries: the `section` byte of a version-3 frame.
    public enum Section: Sendable, Equatable, Hashable {
        /// The Y×Z joint cells: a float64 sum and an int64 argmax count each (code 0).
        case joint
        /// Float64 values of one feature statistic's flat vector (code: the kind's raw value).
        case statistic(StatisticKind)

        /// The section byte.
        public var code: UInt8 {
            switch self {
            case .joint: 0
            case .statistic(let kind): kind.rawValue
            }
        }
    }

    /// Creates a part of the joint cells (section 0); `featureWidth` is the run's D (0: none).
    public init(
        run: RunIdentity, partialID: UInt64, targetClasses: Int, sourceClasses: Int, featureWidth: Int = 0,
        sampleCount: UInt64, chunks: [ChunkID], part: MatrixPart, jointSums: [Double], argmaxCounts: [Int64]
    ) {
        precondition(jointSums.count == part.cellCount && argmaxCounts.count == part.cellCount)
        precondition(sourceClasses >= 1, "a run of features alone has no joint cells")
        self.init(
            run: run, partialID: partialID, targetClasses: targetClasses, sourceClasses: sourceClasses,
            featureWidth: featureWidth, sampleCount: sampleCount, chunks: chunks, part: part, section: .joint,
            jointSums: jointSums, argmaxCounts: argmaxCounts, featureValues: [])
    }

    /// Creates a part of one feature statistic (`kind`'s section) of a run with `featureWidth`
    /// ≥ 1 features a row.
    public init(
        run: RunIdentity, partialID: UInt64, targetClasses: Int, sourceClasses: Int, featureWidth: Int,
        sampleCount: UInt64, chunks: [ChunkID], part: MatrixPart, kind: StatisticKind, featureValues: [Double]
    ) {
        precondition(featureWidth >= 1, "feature statistics need a feature width of at least 1")
        precondition(featureValues.count == part.cellCount)
        self.init(
            run: run, partialID: partialID, targetClasses: targetClasses, sourceClasses: sourceClasses,
            featureWidth: featureWidth, sampleCount: sampleCount, chunks: chunks, part: part, section: .statistic(kind),
            jointSums: [], argmaxCounts: [], featureValues: featureValues)
    }

    private init(
        run: RunIdentity, partialID: UInt64, targetClasses: Int, sourceClasses: Int, featureWidth: Int,
        sampleCount: UInt64, chunks: [ChunkID], part: MatrixPart, section: Section, jointSums: [Double],
        argmaxCounts: [Int64], featureValues: [Double]
    ) {
        precondition(featureWidth >= 0, "a feature width is not negative")
        self.run = run.id
        self.model = run.model
        self.dataset = run.dataset
        self.partialID = partialID
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.featureWidth = featureWidth
        self.sampleCount = sampleCount
        self.chunks = chunks
        self.part = part
        self.section = section
        self.jointSums = jointSums
        self.argmaxCounts = argmaxCounts
        self.featureValues = featureValues
    }

    /// Bytes per joint cell on the wire: a float64 sum and an int64 count.
    public static let bytesPerCell = 16
    /// Bytes per feature statistic on the wire: a float64.
    public static let bytesPerFeatureValue = 8
    /// Bytes per listed chunk on the wire.
    public static let bytesPerChunk = 16
    /// Bytes of every part's message kept for the header, the fixed fields and the strings.
    public static let headroomBytes = 4096

    /// The id of a partial covering `chunks` of `run`: the same set gives the same id anywhere.
    public static func id(run: String, chunks: [ChunkID]) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(run)
        hasher.combine(chunkSet: chunks)
        return hasher.value
    }

    /// A whole partial as frames, each within `messageLimit` bytes: the Y×Z joint cells
    /// (`jointSums`, `argmaxCounts`, Y·Z each; none when Z is 0) in section-0 parts when
    /// `sourceClasses` ≥ 1, then each feature statistic of `statistics` (when `featureWidth` ≥ 1;
    /// its `flattened` values, exactly `kind.statisticType.flattenedCount` of them) in parts of
    /// its own section, in order.
    ///
    /// Every part has a payload budget of `messageLimit` − 4,096 − 16·C bytes (C listed chunks;
    /// at least one joint cell), so that 16-byte joint cells and 8-byte feature values are cut
    /// the way `MatrixPart.split` cuts a matrix. Each present section has at least one part and
    /// no part mixes sections; the parts are numbered 0..<total over all sections (from 0 in
    /// the first statistic's when there is no section 0).
    public static func parts(
        run: RunIdentity, partialID: UInt64, targetClasses: Int, sourceClasses: Int, sampleCount: UInt64,
        chunks: [ChunkID], jointSums: [Double], argmaxCounts: [Int64], featureWidth: Int,
        statistics: [(kind: StatisticKind, values: [Double])], messageLimit: Int
    ) -> [PartialFrame] {
        let cells = targetClasses * sourceClasses
        precondition(jointSums.count == cells && argmaxCounts.count == cells, "the joint sums and counts are Y·Z cells each")
        precondition(featureWidth >= 0, "a feature width is not negative")
        precondition(sourceClasses >= 1 || featureWidth >= 1, "a partial carries joint cells, feature statistics or both")
        precondition(featureWidth > 0 || statistics.isEmpty, "feature statistics need a feature width")
        for (kind, values) in statistics {
            let expected = kind.statisticType.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth)
            precondition(values.count == expected, "\(values.count) values of \(kind), where the shape makes \(expected)")
        }
        let budget = max(bytesPerCell, messageLimit - headroomBytes - chunks.count * bytesPerChunk)
        let jointParts = sourceClasses > 0 ? MatrixPart.split(cells: cells, bytesPerCell: bytesPerCell, maxPayloadBytes: budget) : []
        let statisticParts = statistics.map { statistic in
            MatrixPart.split(cells: statistic.values.count, bytesPerCell: bytesPerFeatureValue, maxPayloadBytes: budget)
        }
        let total = UInt32(jointParts.count + statisticParts.reduce(0) { $0 + $1.count })
        // Renumbered over every section: the partial is complete when `total` indices are in.
        func numbered(_ part: MatrixPart, from first: Int) -> MatrixPart {
            MatrixPart(
                partIndex: UInt32(first) + part.partIndex, partCount: total, cellStart: part.cellStart, cellCount: part.cellCount)
        }
        var frames = jointParts.map { part in
            let range = part.cellStart..<(part.cellStart + part.cellCount)
            return PartialFrame(
                run: run, partialID: partialID, targetClasses: targetClasses, sourceClasses: sourceClasses,
                featureWidth: featureWidth, sampleCount: sampleCount, chunks: chunks, part: numbered(part, from: 0),
                jointSums: Array(jointSums[range]), argmaxCounts: Array(argmaxCounts[range]))
        }
        for (statistic, parts) in zip(statistics, statisticParts) {
            let first = frames.count
            frames += parts.map { part in
                PartialFrame(
                    run: run, partialID: partialID, targetClasses: targetClasses, sourceClasses: sourceClasses,
                    featureWidth: featureWidth, sampleCount: sampleCount, chunks: chunks, part: numbered(part, from: first),
                    kind: statistic.kind,
                    featureValues: Array(statistic.values[part.cellStart..<(part.cellStart + part.cellCount)]))
            }
        }
        return frames
    }

    /// The bytes on the wire: always version 3.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(
            kind: .partial,
            capacity: 96 + run.utf8.count + model.utf8.count + dataset.utf8.count + chunks.count * Self.bytesPerChunk
                + jointSums.count * Self.bytesPerCell + featureValues.count * Self.bytesPerFeatureValue)
        writer.write(RunIdentity(id: run, model: model, dataset: dataset))
        writer.write(partialID)
        writer.write(UInt32(targetClasses))
        writer.write(UInt32(sourceClasses))
        writer.write(UInt32(featureWidth))
        writer.write(sampleCount)
        writer.write(UInt32(chunks.count))
        for chunk in chunks { writer.write(chunk) }
        part.write(to: &writer)
        writer.write(section.code)
        writer.alignTo8()
        for sum in jointSums { writer.write(sum) }
        for count in argmaxCounts { writer.write(count) }
        for value in featureValues { writer.write(value) }
        return writer.bytes
    }

    /// The run's identity as this frame gives it.
    public var identity: RunIdentity { RunIdentity(id: run, model: model, dataset: dataset) }

    init(reading reader: inout ByteReader, version: UInt8) throws(FrameError) {
        if version >= 2 {
            let identity = try reader.readRunIdentity()
            (run, model, dataset) = (identity.id, identity.model, identity.dataset)
        } else {
            (run, model, dataset) = (try reader.readRunID(), "", "")
        }
        partialID = try reader.read(UInt64.self, "partial_id")
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: true, allowingNoSourceClasses: true)
        featureWidth = version >= 3 ? try reader.readFeatureWidth(targetClasses: targetClasses, required: false) : 0
        guard sourceClasses > 0 || featureWidth > 0 else {
            throw .invalidValue(field: "source_classes", reason: FrameError.noSourceClassesWithoutFeatures)
        }
        sampleCount = try reader.readCount64("sample_count")
        let chunkCount = try reader.readCount("chunk_count", elementSize: Self.bytesPerChunk)
        var chunks: [ChunkID] = []
        for _ in 0..<chunkCount { chunks.append(try reader.readChunkID()) }
        self.chunks = chunks
        guard partialID == Self.id(run: run, chunks: chunks) else {
            throw .invalidValue(field: "partial_id", reason: "does not match the run and chunks")
        }
        part = try MatrixPart(reading: &reader)
        if version >= 3 {
            let code = try reader.read(UInt8.self, "section")
            if code == 0 {
                section = .joint
            } else if let kind = StatisticKind(rawValue: code) {
                guard featureWidth > 0 else {
                    throw .invalidValue(field: "section", reason: "feature statistics in a partial with feature_width 0")
                }
                section = .statistic(kind)
            } else {
                throw .invalidValue(field: "section", reason: "unknown section \(code)")
            }
            guard section != .joint || sourceClasses > 0 else {
                throw .invalidValue(field: "section", reason: "joint cells in a partial with source_classes 0")
            }
        } else {
            section = .joint
        }
        let count = part.cellCount
        switch section {
        case .joint:
            try part.check(totalCells: targetClasses * sourceClasses)
            try reader.skipPadding()
            guard reader.remaining == count * Self.bytesPerCell else {
                throw .invalidValue(field: "cells", reason: "\(count) cells need \(count * Self.bytesPerCell) bytes, \(reader.remaining) left")
            }
            jointSums = try reader.readDoubles(count: count, "joint_sums")
            argmaxCounts = try reader.readArray(Int64.self, count: count, "argmax_counts")
            featureValues = []
        case .statistic(let kind):
            let total = kind.statisticType.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth)
            guard total <= WireFormat.maxFeatureValues else {
                throw .invalidValue(
                    field: "section",
                    reason: "\(kind) of \(targetClasses) classes and \(featureWidth) features make \(total) values, beyond the limit of \(WireFormat.maxFeatureValues)")
            }
            try part.check(totalCells: total, whole: "\(kind)")
            try reader.skipPadding()
            guard reader.remaining == count * Self.bytesPerFeatureValue else {
                throw .invalidValue(
                    field: "feature_values",
                    reason: "\(count) values need \(count * Self.bytesPerFeatureValue) bytes, \(reader.remaining) left")
            }
            featureValues = try reader.readDoubles(count: count, "feature_values")
            (jointSums, argmaxCounts) = ([], [])
        }
    }
}
