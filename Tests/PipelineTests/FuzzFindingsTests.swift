import LEEPCore
import Testing
import WireFormat

@testable import Pipeline

/// What the fuzz targets of Tests/Fuzz found in the aggregator's run logic (docs/reliability.md,
/// "Fuzzing"), one test each, on the records that showed it. Each record is one a worker, a
/// producer or an aggregator could not have written, but any client can publish to the topics.
@Suite struct FuzzFindingsTests {
    typealias F = RunFixture

    /// A copy of a partial's frames with other chunks or another sample count or other counts.
    static func altered(_ frames: [Frame], chunks: [ChunkID]? = nil, sampleCount: UInt64? = nil, argmaxCount: Int64? = nil) -> [Frame] {
        frames.map { frame in
            guard case .partial(let part) = frame else { return frame }
            let chunks = chunks ?? part.chunks
            return .partial(PartialFrame(
                run: part.identity, partialID: PartialFrame.id(run: part.run, chunks: chunks), targetClasses: part.targetClasses,
                sourceClasses: part.sourceClasses, sampleCount: sampleCount ?? part.sampleCount, chunks: chunks, part: part.part,
                jointSums: part.jointSums, argmaxCounts: argmaxCount.map { [$0] + part.argmaxCounts.dropFirst() } ?? part.argmaxCounts))
        }
    }

    /// Found: the joint counted 4 samples for chunks of 3 rows. A partial is accepted only when
    /// it lists each chunk once and counts their rows.
    @Test func aPartialThatMiscountsItsRowsIsIgnored() {
        var ledger = RunLedger(run: F.identity.id)
        _ = RunLedgerTests.apply(Self.altered(F.partial([0, 1]), sampleCount: 3), to: &ledger)
        _ = RunLedgerTests.apply(Self.altered(F.partial([2]), chunks: [F.chunkID(2), F.chunkID(2)], sampleCount: 2), to: &ledger)
        #expect(ledger.accepted.isEmpty && ledger.joint == nil)
        _ = RunLedgerTests.apply(F.partial([0, 1]), to: &ledger)
        #expect(ledger.accepted == [F.chunkID(0), F.chunkID(1)] && ledger.joint?.sampleCount == 2)
    }

    /// Fixed with the finding above: argmax counts that are not one per sample were merged, and
    /// two near 2^63 overflowed (a trap: the aggregator crashed).
    @Test func argmaxCountsThatAreNotOnePerSampleAreIgnored() {
        var ledger = RunLedger(run: F.identity.id)
        _ = RunLedgerTests.apply(Self.altered(F.partial([0]), argmaxCount: .max) + Self.altered(F.partial([1]), argmaxCount: .max), to: &ledger)
        _ = RunLedgerTests.apply(Self.altered(F.partial([2]), argmaxCount: -1), to: &ledger)
        #expect(ledger.accepted.isEmpty && ledger.joint == nil)
    }

    /// Found: with `shard_count` 2^32 − 1, the summary an incomplete or abandoned run publishes
    /// listed every missing shard (an allocation of 16 GiB, past the fuzzer's limit).
    @Test func aHugeShardCountIsSummarisedBriefly() {
        var ledger = RunLedger(run: F.identity.id)
        _ = ledger.apply(.manifest(ManifestFrame(
            run: F.identity, shard: 0, shardCount: .max, sourceClasses: F.z, targetClasses: 2, shardRows: 0, totalChunks: 0,
            partIndex: 0, partCount: 1, chunks: [])))
        #expect(ledger.missingSummary.hasPrefix(
            "no complete manifest from shards 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, … (4294967294 in all) of 4294967295;"))
    }

    /// Found: a manifest whose chunks overlap was accepted when their count and rows added up,
    /// and the overlapping rows were counted twice.
    @Test func chunksThatDoNotCoverTheRowsOnceFailTheRun() {
        var ledger = RunLedger(run: F.identity.id)
        let overlapping = [ChunkID(shard: 0, firstRow: 0, rowCount: 2), ChunkID(shard: 0, firstRow: 1, rowCount: 2)]
        let change = ledger.apply(.manifest(ManifestFrame(
            run: F.identity, shard: 0, shardCount: 1, sourceClasses: F.z, targetClasses: 2, shardRows: 4, totalChunks: 2,
            partIndex: 0, partCount: 1,
            chunks: overlapping.map { LocatedChunk(id: $0, location: RecordLocation(partition: 0, offset: Int64($0.firstRow))) })))
        #expect(change == .failure("the manifest of shard 0 lists chunks that do not cover its rows 0..<4 once each"))
    }

    /// Found: a pass-2 marker read before pass 1 was complete was followed, and the results of
    /// its tasks made a final score of half the rows.
    @Test func aPass2MarkerBeforePass1IsCompleteIsNotFollowed() throws {
        var machine = RunStateMachine(run: F.identity.id, policy: RunStateMachineTests.policy, firstSeen: RunStateMachineTests.start, isLive: true)
        _ = RunStateMachineTests.feed(&machine, [F.manifest()] + F.partial([0, 1]))
        let (ids, results) = try F.pass2Results(joint: machine.ledger.joint!, tasks: [[0, 1]])
        let actions = RunStateMachineTests.feed(&machine, [.runMarker(RunMarkerFrame(run: F.identity.id, marker: .pass2Issued(taskIDs: ids)))] + results)
        #expect(RunStateMachineTests.closing(actions) == nil)
        guard case .collecting = machine.state else { Issue.record("followed the marker: \(machine.state)"); return }
    }

    /// Found: a pass 2 of no task over a pass 1 of no sample reached `LEEPScore`'s precondition
    /// (the aggregator crashed). Fixed with it: pass-2 counts past pass 1's, or hits past
    /// samples, fail the run instead of overflowing their sum.
    @Test func pass2CountsThatCannotBeFailTheRun() throws {
        var empty = RunLedger(run: F.identity.id)
        _ = RunLedgerTests.apply(Self.altered(F.partial([0]), chunks: [], sampleCount: 0, argmaxCount: 0), to: &empty)
        #expect(empty.joint?.sampleCount == 0)
        #expect(Self.reason(empty.leepScore(tasks: [], accuracy: true)) == "pass 1 covered no samples")

        var ledger = RunLedger(run: F.identity.id)
        _ = RunLedgerTests.apply([F.manifest()] + F.partial([0, 1, 2, 3]), to: &ledger)
        let huge = [UInt64(1), 2].map {
            Frame.taskResult(TaskResultFrame(run: F.identity.id, taskID: $0, sampleCount: UInt64(Int64.max), logEEPSum: -1, hits: 0))
        }
        _ = RunLedgerTests.apply(huge, to: &ledger)
        #expect(Self.reason(ledger.leepScore(tasks: [1, 2], accuracy: true)) == "pass 2 covered more samples than the 4 of pass 1")
        _ = ledger.apply(.taskResult(TaskResultFrame(run: F.identity.id, taskID: 3, sampleCount: 4, logEEPSum: -1, hits: 5)))
        #expect(Self.reason(ledger.leepScore(tasks: [3], accuracy: true)) == "a pass-2 result counts 5 hits in 4 samples")
    }

    /// Found: a Σ log EEP of NaN made a final record of LEEP NaN, which JSON cannot hold (the
    /// aggregator's encoding of the record trapped).
    @Test func aScoreThatIsNotFiniteFailsTheRun() throws {
        var ledger = RunLedger(run: F.identity.id)
        _ = RunLedgerTests.apply([F.manifest()] + F.partial([0, 1, 2, 3]), to: &ledger)
        let (ids, results) = try F.pass2Results(joint: ledger.joint!, tasks: [[0, 1], [2, 3]])
        guard case .taskResult(let first) = results[0] else { Issue.record("not a result"); return }
        _ = ledger.apply(.taskResult(TaskResultFrame(
            run: first.run, taskID: first.taskID, sampleCount: first.sampleCount, logEEPSum: .nan, hits: first.hits)))
        _ = ledger.apply(results[1])
        #expect(Self.reason(ledger.leepScore(tasks: Set(ids), accuracy: true))?.hasPrefix("the score is not a finite number (LEEP nan") == true)
    }

    /// Found after the run's Z came to be its manifest's: two parts of one partial with other
    /// Z, before any manifest or sums, were merged into a matrix of the first part's shape, and
    /// the second's cells lay past its end (a trap: the aggregator crashed).
    @Test func partsOfOnePartialWithOtherSourceClassesAreNotMerged() {
        var ledger = RunLedger(run: F.identity.id)
        let parts = F.partial([0], cellsPerPart: 3)
        #expect(parts.count == 2)
        guard case .partial(let second) = parts[1] else { Issue.record("not a partial"); return }
        let wider = PartialFrame(
            run: second.identity, partialID: second.partialID, targetClasses: second.targetClasses, sourceClasses: F.z + 1,
            sampleCount: second.sampleCount, chunks: second.chunks,
            part: MatrixPart(partIndex: 1, partCount: 2, cellStart: 4, cellCount: 3),
            jointSums: [0, 0, 0], argmaxCounts: [0, 0, 0])
        _ = RunLedgerTests.apply([parts[0], .partial(wider)], to: &ledger)
        #expect(ledger.accepted.isEmpty && ledger.joint == nil)
    }

    static func reason(_ outcome: Result<LEEPScore, RunFailure>?) -> String? {
        if case .failure(let failure) = outcome { failure.reason } else { nil }
    }
}
