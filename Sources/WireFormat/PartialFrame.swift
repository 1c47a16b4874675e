/// Kind 3: one part of a worker's pass-1 partial sums for a run — the joint sums and NCE counts
/// of exactly the chunks it lists. Every part lists all the partial's chunks, so the aggregator
/// can tell a partial's coverage from any of its parts. Version 2 (this build's) carries the
/// run's model and data-set names, from its chunks, so that a run the aggregator knows only
/// from partials is reported under its names; version 1 frames read with empty names.
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
    /// Z.
    public let sourceClasses: Int
    /// The samples the whole partial covers.
    public let sampleCount: UInt64
    /// The chunks the whole partial covers.
    public let chunks: [ChunkID]
    /// Which cells this part carries.
    public let part: MatrixPart
    /// n·P(y, z) sums for the part's cells.
    public let jointSums: [Double]
    /// NCE's argmax counts for the part's cells.
    public let argmaxCounts: [Int64]

    /// Creates a part.
    public init(
        run: RunIdentity, partialID: UInt64, targetClasses: Int, sourceClasses: Int, sampleCount: UInt64,
        chunks: [ChunkID], part: MatrixPart, jointSums: [Double], argmaxCounts: [Int64]
    ) {
        precondition(jointSums.count == part.cellCount && argmaxCounts.count == part.cellCount)
        self.run = run.id
        self.model = run.model
        self.dataset = run.dataset
        self.partialID = partialID
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.sampleCount = sampleCount
        self.chunks = chunks
        self.part = part
        self.jointSums = jointSums
        self.argmaxCounts = argmaxCounts
    }

    /// Bytes per cell on the wire: a float64 sum and an int64 count.
    public static let bytesPerCell = 16
    /// Bytes per listed chunk on the wire.
    public static let bytesPerChunk = 16

    /// The id of a partial covering `chunks` of `run`: the same set gives the same id anywhere.
    public static func id(run: String, chunks: [ChunkID]) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(run)
        hasher.combine(chunkSet: chunks)
        return hasher.value
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(
            kind: .partial,
            capacity: 96 + run.utf8.count + model.utf8.count + dataset.utf8.count + chunks.count * Self.bytesPerChunk
                + part.cellCount * Self.bytesPerCell)
        writer.write(RunIdentity(id: run, model: model, dataset: dataset))
        writer.write(partialID)
        writer.write(UInt32(targetClasses))
        writer.write(UInt32(sourceClasses))
        writer.write(sampleCount)
        writer.write(UInt32(chunks.count))
        for chunk in chunks { writer.write(chunk) }
        part.write(to: &writer)
        writer.alignTo8()
        for sum in jointSums { writer.write(sum) }
        for count in argmaxCounts { writer.write(count) }
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
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: true)
        sampleCount = try reader.readCount64("sample_count")
        let chunkCount = try reader.readCount("chunk_count", elementSize: Self.bytesPerChunk)
        var chunks: [ChunkID] = []
        for _ in 0..<chunkCount { chunks.append(try reader.readChunkID()) }
        self.chunks = chunks
        guard partialID == Self.id(run: run, chunks: chunks) else {
            throw .invalidValue(field: "partial_id", reason: "does not match the run and chunks")
        }
        part = try MatrixPart(reading: &reader, totalCells: targetClasses * sourceClasses)
        try reader.skipPadding()
        guard reader.remaining == part.cellCount * Self.bytesPerCell else {
            throw .invalidValue(
                field: "cells", reason: "\(part.cellCount) cells need \(part.cellCount * Self.bytesPerCell) bytes, \(reader.remaining) left")
        }
        jointSums = try reader.readDoubles(count: part.cellCount, "joint_sums")
        argmaxCounts = try reader.readArray(Int64.self, count: part.cellCount, "argmax_counts")
    }
}
