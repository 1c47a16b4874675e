import LEEPCore
import Testing
import WireFormat

@testable import Pipeline

/// The manifest set and the partial assembler alone: the two folds `RunLedger` is built from.
@Suite struct RunManifestsTests {
    typealias F = RunFixture

    static func manifest(_ frame: Frame) -> ManifestFrame {
        guard case .manifest(let manifest) = frame else { fatalError("not a manifest") }
        return manifest
    }

    static func manifest(shard: UInt32, of shards: UInt32, sourceClasses: Int = F.z, rows: [Int] = [0, 1]) -> ManifestFrame {
        ManifestFrame(
            run: F.identity, shard: shard, shardCount: shards, sourceClasses: sourceClasses, targetClasses: 2,
            shardRows: UInt64(rows.count), totalChunks: UInt32(rows.count), partIndex: 0, partCount: 1,
            chunks: rows.map { LocatedChunk(id: ChunkID(shard: shard, firstRow: UInt64($0), rowCount: 1),
                                            location: RecordLocation(partition: 0, offset: Int64($0))) },
            eepAccuracy: false)
    }

    @Test func partsMakeAManifestAndAPartAgainIsHarmless() {
        var manifests = RunManifests()
        #expect(manifests.missingShards == "no manifest from any shard")
        #expect(manifests.add(Self.manifest(F.manifest(rows: [0, 1], partIndex: 0, partCount: 2))) == .added)
        #expect(!manifests.isComplete && manifests.chunkCount == nil)
        #expect(manifests.missingShards == "no complete manifest from shard 0 of 1")
        #expect(manifests.add(Self.manifest(F.manifest(rows: [0, 1], partIndex: 0, partCount: 2))) == .repeated)
        #expect(manifests.add(Self.manifest(F.manifest(rows: [2, 3], partIndex: 1, partCount: 2))) == .added)
        #expect(manifests.isComplete && manifests.chunkCount == 4 && manifests.missingShards == nil)
        #expect(manifests.chunks.map(\.id) == (0..<4).map(F.chunkID))
        #expect(manifests.eepAccuracyRequested && manifests.shape == RunShape(sourceClasses: F.z, featureWidth: 0))
        #expect(manifests.contradiction(accepting: Set((0..<4).map(F.chunkID))) == nil)
    }

    @Test func manifestsThatContradictEachOtherSayHow() {
        var manifests = RunManifests()
        #expect(manifests.add(Self.manifest(shard: 0, of: 2)) == .added)
        #expect(manifests.add(Self.manifest(shard: 1, of: 3)) == .contradiction(
            "shard 1 says the run has 3 shards, an earlier manifest said 2"))
        #expect(manifests.add(Self.manifest(shard: 1, of: 2, sourceClasses: 5)) == .contradiction(
            "the manifest of shard 1 has 5 source classes, the run has 3"))
        #expect(manifests.add(Self.manifest(shard: 0, of: 2, rows: [0, 1, 2])) == .contradiction(
            "shard 0 was published again with other chunk boundaries"))
        #expect(manifests.missingShards == "no complete manifest from shard 1 of 2")
    }

    @Test func completeManifestsRefuseAStrayChunkAndRowsCoveredTwice() {
        var manifests = RunManifests()
        #expect(manifests.add(Self.manifest(F.manifest())) == .added)
        #expect(manifests.contradiction(accepting: [ChunkID(shard: 0, firstRow: 0, rowCount: 2)])
            == "chunk \(ChunkID(shard: 0, firstRow: 0, rowCount: 2)) is not in its shard's manifest: "
            + "the shard was published again with other chunk boundaries")
        var overlapping = RunManifests()
        #expect(overlapping.add(Self.manifest(F.manifest(rows: [0, 1, 1, 3]))) == .added)
        #expect(overlapping.contradiction(accepting: []) == "the manifest of shard 0 lists chunks that do not cover its rows 0..<4 once each")
    }

    @Test func aPartialIsWholeWhenItsLastPartComesAndAPartOfAnotherDescriptionIsDropped() throws {
        let parts = F.partial([0, 1, 2], cellsPerPart: 2).map { frame -> PartialFrame in
            guard case .partial(let part) = frame else { fatalError("not a partial") }
            return part
        }
        #expect(parts.count == 3)
        let shape = RunShape(sourceClasses: F.z, featureWidth: 0)
        var assembler = PartialAssembler()
        for part in parts.dropLast() {
            guard case .incomplete = assembler.add(part, shape: shape) else { Issue.record("whole too early"); return }
        }
        guard case .dropped = assembler.add(parts.last!, shape: RunShape(sourceClasses: F.z, featureWidth: 4)) else {
            Issue.record("a part describing another shape was kept")
            return
        }
        guard case .whole(let whole) = assembler.add(parts.last!, shape: shape) else {
            Issue.record("not whole with every part")
            return
        }
        #expect(whole.chunks == [0, 1, 2].map(F.chunkID) && whole.sampleCount == 3)
        let joint = try #require(PartialAssembler.joint(of: whole))
        #expect(joint.sampleCount == 3 && joint.argmaxCounts.reduce(0, +) == 3)
        // The same partial again starts afresh: the assembler keeps only what is not whole.
        guard case .incomplete = assembler.add(parts[0], shape: shape) else { Issue.record("kept a whole partial"); return }
    }
}
