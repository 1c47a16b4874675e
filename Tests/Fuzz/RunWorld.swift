#if DEBUG || LEEP_FUZZ  // @testable import needs a module built for testing (debug, or ops/fuzz's -enable-testing)
import LEEPCore
import WireFormat

@testable import Pipeline

/// A small run the script targets build their records from: a few shards, each cut into chunks
/// at fixed row boundaries, every chunk at a location of the chunks topic. The script chooses
/// the run's shape, then each record as a producer, a worker or an aggregator would publish it
/// — honestly, or with one field wrong in one of the ways a bug or a foreign client could.
struct RunWorld {
    /// The golden fixtures' run, so that a fixture decoded by a raw-frame event joins this run.
    static let identity = RunIdentity(id: "r1", model: "m", dataset: "d")

    let sourceClasses: Int
    let targetClasses: Int
    /// Each shard's chunks, tiling its rows in order.
    let shards: [[LocatedChunk]]
    /// Chunks per pass-2 or repair task.
    let chunksPerTask: Int

    init(_ input: inout FuzzInput) {
        sourceClasses = input.int(in: 1...4)
        targetClasses = input.int(in: 1...3)
        chunksPerTask = input.int(in: 1...3)
        var offset: Int64 = 0
        shards = (0..<input.int(in: 1...3)).map { shard in
            let rows = input.int(in: 0...6)
            let perChunk = input.int(in: 1...3)
            return stride(from: 0, to: rows, by: perChunk).map { first in
                offset += 1
                let id = ChunkID(shard: UInt32(shard), firstRow: UInt64(first), rowCount: UInt32(min(perChunk, rows - first)))
                return LocatedChunk(id: id, location: RecordLocation(partition: Int32(shard % 2), offset: offset))
            }
        }
    }

    var allChunks: [LocatedChunk] { shards.flatMap { $0 } }

    static func rows(_ chunks: [ChunkID]) -> UInt64 { chunks.reduce(0) { $0 + UInt64($1.rowCount) } }

    // MARK: Records

    /// One part of a shard's manifest: honest, or with its chunk list, counts or names wrong.
    func manifest(_ input: inout FuzzInput) -> Frame {
        let shard = input.int(in: 0...(shards.count - 1))
        let partCount = input.int(in: 1...3)
        let partIndex = input.int(in: 0...(partCount - 1))
        let own = shards[shard]
        let perPart = (own.count + partCount - 1) / max(partCount, 1)
        var chunks = Array(own.dropFirst(partIndex * perPart).prefix(perPart))
        var totalChunks = UInt32(own.count)
        var shardRows = Self.rows(own.map(\.id))
        var shardCount = UInt32(shards.count)
        var sourceClasses = self.sourceClasses
        var identity = Self.identity
        switch input.int(in: 0...15) {
        case 1: chunks = chunks.dropLast()
        case 2: chunks += chunks.prefix(1)  // listed twice
        case 3:  // rows shifted by one: overlaps or leaves a gap next to its neighbour
            chunks = chunks.map { LocatedChunk(id: ChunkID(shard: $0.id.shard, firstRow: $0.id.firstRow + 1, rowCount: $0.id.rowCount), location: $0.location) }
        case 4: chunks.append(LocatedChunk(id: ChunkID(shard: UInt32(shard), firstRow: 100, rowCount: 1), location: RecordLocation(partition: 0, offset: 999)))
        case 5: totalChunks &+= 1
        case 6: shardRows &+= 1
        case 7: shardCount = [1, 2, 4, UInt32.max][input.int(in: 0...3)]
        case 8: sourceClasses += 1
        case 9: identity = RunIdentity(id: identity.id, model: "m2", dataset: identity.dataset)
        case 10:  // one row per chunk, as if the shard had been cut at other boundaries
            chunks = chunks.map { LocatedChunk(id: ChunkID(shard: $0.id.shard, firstRow: $0.id.firstRow, rowCount: 1), location: $0.location) }
        default: break
        }
        return .manifest(ManifestFrame(
            run: identity, shard: UInt32(shard), shardCount: max(shardCount, UInt32(shard) + 1), sourceClasses: sourceClasses,
            targetClasses: input.int(in: 1...3), shardRows: shardRows, totalChunks: totalChunks, partIndex: UInt32(partIndex),
            partCount: UInt32(partCount), chunks: chunks, eepAccuracy: input.bool()))
    }

    /// A worker's partial over some chunks, as all its parts (or all but one): honest sums, or
    /// with its sample count, argmax counts or shape wrong.
    func partial(_ input: inout FuzzInput) -> [Frame] {
        let all = allChunks
        var chunks: [ChunkID] = (0..<input.int(in: 0...4)).compactMap { _ in
            all.isEmpty ? nil : all[input.int(in: 0...(all.count - 1))].id
        }
        var sourceClasses = self.sourceClasses
        var targetClasses = input.int(in: 1...3)
        let honestSamples = Self.rows(chunks)
        var sampleCount = honestSamples
        var countsLie: Int64?
        switch input.int(in: 0...15) {
        case 1: chunks.append(ChunkID(shard: 0, firstRow: 100, rowCount: 1))  // a chunk no manifest lists
        case 2: sampleCount = [0, honestSamples + 1, UInt64(Int64.max)][input.int(in: 0...2)]
        case 3: countsLie = [-1, Int64.max, 1][input.int(in: 0...2)]
        case 4: sourceClasses += 1
        case 5: targetClasses = 1 << 12  // a wide Y, as a shard with a large label would declare
        default: break
        }
        let cells = targetClasses * sourceClasses
        var sums = (0..<cells).map { _ in Double(input.byte()) / 16 }
        var counts = [Int64](repeating: 0, count: cells)
        counts[input.int(in: 0...(cells - 1))] = Int64(sampleCount)
        if let countsLie { counts[input.int(in: 0...(cells - 1))] = countsLie }
        if input.int(in: 0...15) == 0 { sums[0] = .nan }
        let perPart = (cells + input.int(in: 0...2)) / input.int(in: 1...3)
        let parts = MatrixPart.split(cells: cells, bytesPerCell: PartialFrame.bytesPerCell, maxPayloadBytes: PartialFrame.bytesPerCell * max(1, perPart))
        let dropped = input.int(in: 0...7) == 0 ? input.int(in: 0...(parts.count - 1)) : nil
        let id = PartialFrame.id(run: Self.identity.id, chunks: chunks)
        return parts.indices.filter { $0 != dropped }.map { index in
            let part = parts[index]
            let range = part.cellStart..<(part.cellStart + part.cellCount)
            return .partial(PartialFrame(
                run: Self.identity, partialID: id, targetClasses: targetClasses, sourceClasses: sourceClasses,
                sampleCount: sampleCount, chunks: chunks, part: part, jointSums: Array(sums[range]), argmaxCounts: Array(counts[range])))
        }
    }

    /// A worker's result of one of `tasks` (or of a task nobody issued): honest counts, or a
    /// count or a sum no worker could compute.
    func result(_ input: inout FuzzInput, tasks: [RunStateMachine.TaskPlan]) -> Frame {
        let task = tasks.isEmpty ? nil : tasks[input.int(in: 0...(tasks.count - 1))]
        let honest = Self.rows(task?.chunks.map(\.id) ?? [])
        var sampleCount = honest
        var hits = UInt64(input.int(in: 0...Int(min(honest, 255))))
        var logEEPSum = -Double(input.byte()) / 8
        switch input.int(in: 0...15) {
        case 1: sampleCount = [0, honest + 1, UInt64(Int64.max)][input.int(in: 0...2)]
        case 2: hits = sampleCount &+ 1
        case 3: logEEPSum = [Double.nan, .infinity, -.infinity, 1][input.int(in: 0...3)]
        default: break
        }
        return .taskResult(TaskResultFrame(
            run: Self.identity.id, taskID: task?.id ?? UInt64(input.int(in: 0...255)), sampleCount: sampleCount,
            logEEPSum: logEEPSum, hits: hits))
    }

    /// A decision an aggregator recorded: pass 2 issued (as `tasks`, or some of them), repairs
    /// issued, or the run closed.
    func marker(_ input: inout FuzzInput, tasks: [RunStateMachine.TaskPlan]) -> Frame {
        let marker: RunMarkerFrame.Marker = switch input.int(in: 0...2) {
        case 0: .pass2Issued(taskIDs: tasks.filter { _ in input.int(in: 0...7) != 0 }.map(\.id))
        case 1: .repairIssued(chunks: UInt32(input.int(in: 0...5)))
        default: .closed
        }
        return .runMarker(RunMarkerFrame(run: Self.identity.id, marker: marker))
    }

    /// A worker's rejection of one of the run's chunks.
    func rejection(_ input: inout FuzzInput) -> Frame {
        let all = allChunks
        let chunk = all.isEmpty ? ChunkID(shard: 0, firstRow: 0, rowCount: 1) : all[input.int(in: 0...(all.count - 1))].id
        return .chunkRejected(ChunkRejectedFrame(run: Self.identity, chunk: chunk, reason: "row \(chunk.firstRow): column 0 is nan"))
    }

    /// The record as the aggregator receives it: encoded, sent and decoded (a frame the
    /// decoder refuses is dead-lettered, and never reaches a run).
    static func delivered(_ frame: Frame) -> Frame? { try? Frame.decode(FrameDecodeTarget.encoded(frame)) }

    /// Bytes of the script decoded as a frame, when they are one of this run's (any record of
    /// the runs topic reaches the machine of the run it names).
    static func rawFrame(_ input: inout FuzzInput) -> Frame? {
        let bytes = input.bytes(count: input.int(in: 0...255))
        guard let frame = try? Frame.decode(bytes), frame.run == identity.id else { return nil }
        return frame
    }
}
#endif
