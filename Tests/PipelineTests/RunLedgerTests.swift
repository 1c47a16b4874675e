import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// The aggregator's bookkeeping, record by record, without a broker: what is accepted, what is
/// dropped, when a run is ready, failed or final. These rules are what make the pipeline exact
/// on at-least-once delivery.
@Suite struct RunLedgerTests {
    static let identity = RunIdentity(id: "run-1", model: "m", dataset: "d")
    static let z = 3

    /// Four chunks of one row each; row r has θ = rows[r] and label labels[r].
    static let rows: [[Double]] = [[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.25, 0.25]]
    static let labels: [Int32] = [0, 1, 1, 0]

    static func chunkID(_ row: Int) -> ChunkID { ChunkID(shard: 0, firstRow: UInt64(row), rowCount: 1) }

    static func manifest(
        rows: [Int] = [0, 1, 2, 3], partIndex: UInt32 = 0, partCount: UInt32 = 1, total: UInt32 = 4, eepAccuracy: Bool = true
    ) -> Frame {
        .manifest(ManifestFrame(
            run: identity, shard: 0, shardCount: 1, sourceClasses: z, targetClasses: 2, shardRows: UInt64(total), totalChunks: total,
            partIndex: partIndex, partCount: partCount,
            chunks: rows.map { LocatedChunk(id: chunkID($0), location: RecordLocation(partition: 0, offset: Int64($0))) },
            eepAccuracy: eepAccuracy))
    }

    /// A worker's partial over `chunkRows`, split into parts of at most `cellsPerPart` cells.
    static func partial(_ chunkRows: [Int], targetClasses: Int = 2, cellsPerPart: Int = 100) -> [Frame] {
        var pending = PendingPartial(run: identity.id, targetClasses: targetClasses, sourceClasses: z)
        for row in chunkRows {
            var adder = JointAdder(partial: pending, check: RowCheck())
            let theta = rows[row]
            let label = [labels[row]]
            try! theta.withUnsafeBufferPointer { theta in
                try label.withUnsafeBufferPointer { label in
                    try adder.visit(PredictionChunk(probabilities: theta, labels: label, sourceClasses: z, firstRow: row))
                }
            }
            pending = adder.partial
            pending.record(chunkID(row))
        }
        return pending.frames(maxMessageBytes: 4096 + cellsPerPart * PartialFrame.bytesPerCell + chunkRows.count * 16)
            .map { .partial($0) }
    }

    /// The whole data scored directly.
    static func direct() throws -> LEEPScore {
        var joint = JointAccumulator(targetClasses: 2, sourceClasses: z)
        var eep = EEPAccumulator()
        let theta = rows.flatMap { $0 }
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                let chunk = PredictionChunk(probabilities: theta, labels: labels, sourceClasses: z)
                try joint.add(chunk)
                try eep.add(chunk, conditional: ConditionalTable(joint: joint))
            }
        }
        return LEEPScore(joint: joint, eep: eep)
    }

    /// Pass-2 results as workers would publish them for the ledger's issued tasks.
    static func pass2(_ ledger: inout RunLedger, tasks: [[Int]]) throws {
        let conditional = ConditionalTable(joint: ledger.joint!)
        var ids: [UInt64] = []
        var results: [Frame] = []
        let pass: TaskFrame.Pass = ledger.eepAccuracyRequested ? .eepWithAccuracy : .eep
        for task in tasks {
            let id = TaskFrame.id(run: identity.id, pass: pass, chunks: task.map(chunkID))
            ids.append(id)
            var eep = EEPAccumulator()
            for row in task {
                let theta = rows[row]
                let label = [labels[row]]
                try theta.withUnsafeBufferPointer { theta in
                    try label.withUnsafeBufferPointer { label in
                        try eep.add(
                            PredictionChunk(probabilities: theta, labels: label, sourceClasses: z), conditional: conditional,
                            accuracy: pass == .eepWithAccuracy)
                    }
                }
            }
            results.append(.taskResult(TaskResultFrame(
                run: identity.id, taskID: id, sampleCount: UInt64(eep.sampleCount), logEEPSum: eep.logEEPSum, hits: UInt64(eep.hits))))
        }
        // One result lands before the marker that lists it, one twice.
        ledger.apply(results[0])
        ledger.apply(.runMarker(RunMarkerFrame(run: identity.id, marker: .pass2Issued(taskIDs: ids))))
        for result in results { ledger.apply(result) }
        ledger.apply(results.last!)
    }

    @Test func disjointPartialsMergeAndTheRunFinishesExact() throws {
        var ledger = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0, 1]) + Self.partial([2]) { ledger.apply(frame) }
        #expect(!ledger.isReadyForPass2, "no manifest yet")
        ledger.apply(Self.manifest())
        #expect(ledger.missingChunks.map(\.id) == [Self.chunkID(3)])
        for frame in Self.partial([3]) { ledger.apply(frame) }
        #expect(ledger.isReadyForPass2)
        try Self.pass2(&ledger, tasks: [[0, 1], [2, 3]])
        guard case .success(let score) = ledger.finalScore() else { Issue.record("no final score"); return }
        let expected = try Self.direct()
        #expect(abs(score.leep - expected.leep) <= 1e-12 * abs(expected.leep))
        #expect(score.nce == expected.nce && score.eepAccuracy == expected.eepAccuracy && score.sampleCount == 4)
    }

    @Test func eepAccuracyOnlyWhenAManifestAsksForIt() throws {
        var ledger = RunLedger(run: Self.identity.id)
        ledger.apply(Self.manifest(eepAccuracy: false))
        for frame in Self.partial([0, 1, 2, 3]) { ledger.apply(frame) }
        #expect(ledger.isReadyForPass2 && !ledger.eepAccuracyRequested)
        try Self.pass2(&ledger, tasks: [[0, 1, 2, 3]])
        guard case .success(let score) = ledger.finalScore() else { Issue.record("no final score"); return }
        let expected = try Self.direct()
        #expect(abs(score.leep - expected.leep) <= 1e-12 * abs(expected.leep) && score.nce == expected.nce)
        #expect(score.eepAccuracy == nil)
    }

    @Test func overlappingPartialIsDroppedWhole() {
        var ledger = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0, 1]) { ledger.apply(frame) }
        let before = ledger.joint
        // A zombie's partial covering chunk 1 again and chunk 2: dropped, chunk 2 stays missing.
        for frame in Self.partial([1, 2]) { ledger.apply(frame) }
        #expect(ledger.duplicatesDropped == 1)
        #expect(ledger.joint == before)
        ledger.apply(Self.manifest())
        #expect(ledger.missingChunks.map(\.id) == [Self.chunkID(2), Self.chunkID(3)])
        // The same partial delivered twice is dropped the second time too.
        for frame in Self.partial([2, 3]) + Self.partial([2, 3]) { ledger.apply(frame) }
        #expect(ledger.duplicatesDropped == 2 && ledger.isReadyForPass2)
    }

    @Test func splitPartialCountsOnlyWhenAllPartsAreIn() {
        var ledger = RunLedger(run: Self.identity.id)
        let parts = Self.partial([0, 1, 2, 3], cellsPerPart: 2)
        #expect(parts.count == 3)
        for frame in parts.dropFirst().reversed() { ledger.apply(frame) }
        #expect(ledger.accepted.isEmpty)
        ledger.apply(parts[0])
        #expect(ledger.accepted.count == 4)
        var whole = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0, 1, 2, 3]) { whole.apply(frame) }
        #expect(ledger.joint == whole.joint)
    }

    @Test func shardsWithDifferentTargetClassesAreWidened() {
        var ledger = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0], targetClasses: 1) + Self.partial([1, 2, 3], targetClasses: 2) { ledger.apply(frame) }
        var whole = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0, 1, 2, 3]) { whole.apply(frame) }
        #expect(ledger.joint?.targetClasses == 2)
        #expect(ledger.joint?.argmaxCounts == whole.joint?.argmaxCounts)
        for (a, b) in zip(ledger.joint!.jointSums, whole.joint!.jointSums) { #expect(abs(a - b) <= 1e-15) }
    }

    @Test func manifestPartsAndRepublishing() {
        var ledger = RunLedger(run: Self.identity.id)
        ledger.apply(Self.manifest(rows: [0, 1], partIndex: 0, partCount: 2))
        #expect(!ledger.manifestsComplete)
        ledger.apply(Self.manifest(rows: [2, 3], partIndex: 1, partCount: 2))
        #expect(ledger.manifestsComplete && ledger.expectedChunkCount == 4)
        // The same shard published again with the same chunks changes nothing.
        ledger.apply(Self.manifest(rows: [0, 1], partIndex: 0, partCount: 2))
        #expect(ledger.failure == nil)
        // …with other boundaries, it fails the run rather than risk counting rows twice.
        ledger.apply(Self.manifest(rows: [0, 2], partIndex: 0, partCount: 2))
        #expect(ledger.failure?.contains("other chunk boundaries") == true)
    }

    @Test func acceptedChunkOutsideTheManifestFailsTheRun() {
        var ledger = RunLedger(run: Self.identity.id)
        for frame in Self.partial([0, 1, 2, 3]) { ledger.apply(frame) }
        ledger.apply(Self.manifest(rows: [0, 1, 2], total: 3))
        #expect(ledger.failure?.contains("not in its shard's manifest") == true)
    }

    @Test func rejectionsAndClassCountMismatchesFailTheRun() {
        var rejected = RunLedger(run: Self.identity.id)
        rejected.apply(.chunkRejected(ChunkRejectedFrame(
            run: Self.identity, chunk: Self.chunkID(2), reason: "row 2: column 1 is nan; probabilities must be finite")))
        #expect(rejected.failure == "row 2: column 1 is nan; probabilities must be finite")
        #expect(rejected.identity == Self.identity)

        var mismatch = RunLedger(run: Self.identity.id)
        mismatch.apply(Self.manifest())
        mismatch.apply(.manifest(ManifestFrame(
            run: Self.identity, shard: 0, shardCount: 2, sourceClasses: 4, targetClasses: 2, shardRows: 1, totalChunks: 1,
            partIndex: 0, partCount: 1, chunks: [])))
        #expect(mismatch.failure != nil)
    }

    @Test func closedRunIgnoresEverythingAfter() {
        var ledger = RunLedger(run: Self.identity.id)
        ledger.apply(.runMarker(RunMarkerFrame(run: Self.identity.id, marker: .closed)))
        for frame in Self.partial([0]) { ledger.apply(frame) }
        ledger.apply(Self.manifest())
        #expect(ledger.phase == .closed && ledger.accepted.isEmpty && ledger.shardCount == nil)
    }

    @Test(arguments: 1...20) func arrivalOrderDoesNotChangeTheScore(seed: Int) throws {
        // Any interleaving of manifest, partials (some split, some duplicated) gives the same
        // score to 1e-12: the property the aggregator relies on.
        var rng = SeededGenerator(seed: UInt64(seed))
        var frames = [Self.manifest()]
        let cuts = [[0], [1, 2], [3]].shuffled(using: &rng)
        for group in cuts { frames += Self.partial(group, cellsPerPart: Int.random(in: 1...6, using: &rng)) }
        frames += Self.partial([1, 2])  // a duplicate delivery
        frames.shuffle(using: &rng)
        var ledger = RunLedger(run: Self.identity.id)
        for frame in frames { ledger.apply(frame) }
        #expect(ledger.isReadyForPass2)
        try Self.pass2(&ledger, tasks: [[0, 1, 2, 3]])
        guard case .success(let score) = ledger.finalScore() else { Issue.record("no final score"); return }
        let expected = try Self.direct()
        #expect(abs(score.leep - expected.leep) <= 1e-12 * abs(expected.leep))
        #expect(abs(score.nce - expected.nce) <= 1e-12 * max(abs(expected.nce), 1e-300) || score.nce == expected.nce)
    }
}
