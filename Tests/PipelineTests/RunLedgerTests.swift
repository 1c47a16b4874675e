import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// Records of one small run, as workers, producers and aggregators would publish them.
enum RunFixture {
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
        var pending = PendingPartial(run: identity, targetClasses: targetClasses, sourceClasses: z, featureWidth: 0)
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

    /// Pass-2 task ids and results, as workers would publish them, for tasks over `tasks`' rows,
    /// with the conditional of `joint`.
    static func pass2Results(joint: JointAccumulator, tasks: [[Int]], accuracy: Bool = true) throws -> (ids: [UInt64], results: [Frame]) {
        let conditional = ConditionalTable(joint: joint)
        var ids: [UInt64] = []
        var results: [Frame] = []
        let pass: TaskFrame.Pass = accuracy ? .eepWithAccuracy : .eep
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
                            accuracy: accuracy)
                    }
                }
            }
            results.append(.taskResult(TaskResultFrame(
                run: identity.id, taskID: id, sampleCount: UInt64(eep.sampleCount), logEEPSum: eep.logEEPSum, hits: UInt64(eep.hits))))
        }
        return (ids, results)
    }
}

/// The ledger of one run, record by record, without a broker: what is accepted, what is
/// dropped, what fails. These rules are what make the pipeline exact on at-least-once delivery;
/// where the run stands is `RunStateMachineTests`'.
@Suite struct RunLedgerTests {
    typealias F = RunFixture

    /// Applies frames, returning the first failure.
    static func apply(_ frames: [Frame], to ledger: inout RunLedger) -> String? {
        var failure: String?
        for frame in frames {
            if case .failure(let reason) = ledger.apply(frame), failure == nil { failure = reason }
        }
        return failure
    }

    @Test func disjointPartialsMergeAndTheScoreIsExact() throws {
        var ledger = RunLedger(run: F.identity.id)
        #expect(Self.apply(F.partial([0, 1]) + F.partial([2]), to: &ledger) == nil)
        #expect(!ledger.isPass1Complete, "no manifest yet")
        _ = ledger.apply(F.manifest())
        #expect(ledger.missingChunks.map(\.id) == [F.chunkID(3)])
        #expect(Self.apply(F.partial([3]), to: &ledger) == nil)
        #expect(ledger.isPass1Complete)
        let (ids, results) = try F.pass2Results(joint: ledger.joint!, tasks: [[0, 1], [2, 3]])
        #expect(ledger.leepScore(tasks: Set(ids), accuracy: true) == nil)
        _ = Self.apply(results + [results[0]], to: &ledger)
        guard case .success(let score) = ledger.leepScore(tasks: Set(ids), accuracy: true) else {
            Issue.record("no final score")
            return
        }
        #expect(ledger.checkedFeatures() == nil)
        let expected = try F.direct()
        #expect(abs(score.leep - expected.leep) <= 1e-12 * abs(expected.leep))
        #expect(score.nce == expected.nce && score.eepAccuracy == expected.eepAccuracy && score.sampleCount == 4)
    }

    @Test func overlappingPartialIsDroppedWhole() {
        var ledger = RunLedger(run: F.identity.id)
        for frame in F.partial([0, 1]) { _ = ledger.apply(frame) }
        let before = ledger.joint
        // A zombie's partial covering chunk 1 again and chunk 2: dropped, chunk 2 stays missing.
        for frame in F.partial([1, 2]) { _ = ledger.apply(frame) }
        #expect(ledger.duplicatesDropped == 1)
        #expect(ledger.joint == before)
        _ = ledger.apply(F.manifest())
        #expect(ledger.missingChunks.map(\.id) == [F.chunkID(2), F.chunkID(3)])
        // The same partial delivered twice is dropped the second time too.
        for frame in F.partial([2, 3]) + F.partial([2, 3]) { _ = ledger.apply(frame) }
        #expect(ledger.duplicatesDropped == 2 && ledger.isPass1Complete)
    }

    @Test func splitPartialCountsOnlyWhenAllPartsAreIn() {
        var ledger = RunLedger(run: F.identity.id)
        let parts = F.partial([0, 1, 2, 3], cellsPerPart: 2)
        #expect(parts.count == 3)
        for frame in parts.dropFirst().reversed() { _ = ledger.apply(frame) }
        #expect(ledger.accepted.isEmpty)
        _ = ledger.apply(parts[0])
        #expect(ledger.accepted.count == 4)
        var whole = RunLedger(run: F.identity.id)
        for frame in F.partial([0, 1, 2, 3]) { _ = whole.apply(frame) }
        #expect(ledger.joint == whole.joint)
    }

    @Test func shardsWithDifferentTargetClassesAreWidened() {
        var ledger = RunLedger(run: F.identity.id)
        for frame in F.partial([0], targetClasses: 1) + F.partial([1, 2, 3], targetClasses: 2) { _ = ledger.apply(frame) }
        var whole = RunLedger(run: F.identity.id)
        for frame in F.partial([0, 1, 2, 3]) { _ = whole.apply(frame) }
        #expect(ledger.joint?.targetClasses == 2)
        #expect(ledger.joint?.argmaxCounts == whole.joint?.argmaxCounts)
        for (a, b) in zip(ledger.joint!.jointSums, whole.joint!.jointSums) { #expect(abs(a - b) <= 1e-15) }
    }

    @Test func manifestPartsAndRepublishing() {
        var ledger = RunLedger(run: F.identity.id)
        #expect(ledger.apply(F.manifest(rows: [0, 1], partIndex: 0, partCount: 2)) == .none)
        #expect(!ledger.manifestsComplete)
        #expect(ledger.apply(F.manifest(rows: [2, 3], partIndex: 1, partCount: 2)) == .none)
        #expect(ledger.manifestsComplete && ledger.expectedChunkCount == 4)
        // The same shard published again with the same chunks changes nothing.
        #expect(ledger.apply(F.manifest(rows: [0, 1], partIndex: 0, partCount: 2)) == .none)
        // …with other boundaries, it fails the run rather than risk counting rows twice.
        guard case .failure(let reason) = ledger.apply(F.manifest(rows: [0, 2], partIndex: 0, partCount: 2)) else {
            Issue.record("republished with other boundaries, yet accepted")
            return
        }
        #expect(reason.contains("other chunk boundaries"))
    }

    @Test func acceptedChunkOutsideTheManifestFailsTheRun() {
        var ledger = RunLedger(run: F.identity.id)
        #expect(RunLedgerTests.apply(F.partial([0, 1, 2, 3]), to: &ledger) == nil)
        guard case .failure(let reason) = ledger.apply(F.manifest(rows: [0, 1, 2], total: 3)) else {
            Issue.record("a stray chunk was accepted")
            return
        }
        #expect(reason.contains("not in its shard's manifest"))
    }
}
