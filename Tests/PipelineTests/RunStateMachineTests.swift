import Foundation
import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// Every transition of a run's lifecycle, on a clock of the test's own, without a broker.
@Suite struct RunStateMachineTests {
    typealias F = RunFixture
    typealias Machine = RunStateMachine

    static let start = Timestamp(milliseconds: 1_000_000)
    static let policy = Machine.Policy(
        repairAfter: .seconds(10), incompleteAfter: .seconds(60), abandonAfter: .seconds(3_600), progressInterval: .seconds(1),
        chunksPerTask: 2, estimateAfterRows: 2)

    /// A machine that is caught up (it decides) from `start`: half of the tests meet the run
    /// first while replaying, the other half in a partition already caught up.
    static func live(firstSeenLive: Bool = false) -> Machine {
        var machine = Machine(run: F.identity.id, policy: policy, firstSeen: start, isLive: firstSeenLive)
        if !firstSeenLive { #expect(machine.handle(.caughtUp(at: start)).isEmpty) }
        return machine
    }

    static func at(_ seconds: Double) -> Timestamp { start + .milliseconds(Int64(seconds * 1000)) }

    /// Feeds records, all at `time`; returns every action.
    static func feed(_ machine: inout Machine, _ frames: [Frame], at time: Timestamp = start) -> [Machine.Action] {
        frames.flatMap { machine.handle(.record($0, at: time)) }
    }

    /// The pass-2 start among `actions`: LEEP's step, recorded by `pass2Issued`.
    static func pass2Start(_ actions: [Machine.Action]) -> (ConditionalTable, [Machine.TaskPlan])? {
        for case .issue(let tables, let tasks, .pass2Issued?) in actions {
            for case .conditional(let conditional) in tables { return (conditional, tasks) }
        }
        return nil
    }

    /// The tasks of `actions` issued again (no marker).
    static func reissued(_ actions: [Machine.Action]) -> [[Machine.TaskPlan]] {
        actions.compactMap { if case .issue(_, let tasks, nil) = $0 { tasks } else { nil } }
    }

    static func closing(_ actions: [Machine.Action]) -> ScoreRecord? {
        for case .close(let record) in actions { return record }
        return nil
    }

    static func published(_ actions: [Machine.Action], _ status: ScoreRecord.Status) -> [ScoreRecord] {
        actions.compactMap { if case .publish(let record) = $0, record.status == status { record } else { nil } }
    }

    /// Results for the tasks of a pass-2 start, as workers would send them.
    static func results(for tasks: [Machine.TaskPlan], joint: JointAccumulator) throws -> [Frame] {
        let rows = tasks.map { $0.chunks.map { Int($0.id.firstRow) } }
        let (ids, results) = try F.pass2Results(joint: joint, tasks: rows, accuracy: tasks.first?.pass == .eepWithAccuracy)
        #expect(ids == tasks.map(\.id), "task ids depend on the run, the pass and the chunks only")
        return results
    }

    static func expectExact(_ record: ScoreRecord?) throws {
        let expected = try F.direct()
        guard let record, record.status == .final, let leep = record.leep else {
            Issue.record("not final: \(String(describing: record))")
            return
        }
        #expect(abs(leep - expected.leep) <= 1e-12 * abs(expected.leep))
        #expect(record.nce == expected.nce && record.n == 4 && record.eepAccuracy == expected.eepAccuracy)
    }

    // MARK: Collecting → pass 2 → closed

    @Test(arguments: [false, true]) func aRunGoesThroughBothPassesToAnExactFinalScore(firstSeenLive: Bool) throws {
        var machine = Self.live(firstSeenLive: firstSeenLive)
        var actions = Self.feed(&machine, [F.manifest()] + F.partial([0, 1]))
        #expect(Self.pass2Start(actions) == nil)
        // One progress record a second at most: the manifest's.
        #expect(Self.published(actions, .progress).map(\.chunksAccepted) == [0])
        actions = Self.feed(&machine, F.partial([2, 3]), at: Self.at(2))
        guard let (conditional, tasks) = Self.pass2Start(actions) else { Issue.record("pass 2 did not start"); return }
        #expect(conditional == ConditionalTable(joint: machine.ledger.joint!))
        // Pass 1 merged: the bracket is published with pass 2's start, and kept to the end.
        let bracket = try #require(LEEPBracket(joint: machine.ledger.joint!))
        let bracketed = Self.published(actions, .bracketed)
        #expect(bracketed.count == 1 && bracketed.first?.leepLower == bracket.lower && bracketed.first?.leepUpper == bracket.upper)
        #expect(bracketed.first?.n == 4 && bracketed.first?.leep == nil)
        #expect(tasks.map { $0.chunks.count } == [2, 2] && tasks.allSatisfy { $0.pass == .eepWithAccuracy })
        guard case .tasks = machine.state else { Issue.record("not in pass 2"); return }
        // Its own marker read back changes nothing; late duplicates of pass 1 neither.
        #expect(Self.feed(&machine, [.runMarker(RunMarkerFrame(run: F.identity.id, marker: .pass2Issued(taskIDs: tasks.map(\.id))))]
            + F.partial([0]), at: Self.at(2.1)).allSatisfy { if case .publish = $0 { true } else { false } })
        let results = try Self.results(for: tasks, joint: machine.ledger.joint!)
        #expect(Self.closing(Self.feed(&machine, [results[0], results[0]], at: Self.at(3))) == nil)
        let record = Self.closing(Self.feed(&machine, [results[1]], at: Self.at(4)))
        try Self.expectExact(record)
        #expect(record?.leepLower == bracket.lower && record?.leepUpper == bracket.upper)
        #expect(bracket.contains(record?.leep ?? .nan))
        #expect(machine.isClosed)
        // A closed run ignores everything after.
        #expect(Self.feed(&machine, [F.manifest()] + F.partial([0]) + results, at: Self.at(5)).isEmpty)
    }

    @Test func liveRecordsCountWhatTheyDidAndHistoryCountsNothing() {
        let frames = [F.manifest()] + F.partial([0, 1]) + F.partial([0, 1]) + F.partial([2])
        var replaying = Machine(run: F.identity.id, policy: Self.policy, firstSeen: Self.start)
        #expect(Self.feed(&replaying, frames).isEmpty, "history was counted when it happened")
        #expect(replaying.ledger.acceptedPartials == 2 && replaying.ledger.duplicatesDropped == 1)
        var machine = Self.live()
        let counted = Self.feed(&machine, frames).compactMap { if case .count(let metric) = $0 { metric } else { nil } }
        #expect(counted == [.partialAccepted, .duplicateDropped, .partialAccepted])
    }

    @Test(arguments: 1...25) func duplicatesAndSplitPartialsInAnyOrderGiveTheSameScore(seed: Int) throws {
        var rng = SeededGenerator(seed: UInt64(seed))
        var frames = [F.manifest()]
        for group in [[0], [1, 2], [3]].shuffled(using: &rng) {
            let partial = F.partial(group, cellsPerPart: Int.random(in: 1...6, using: &rng))
            frames += partial
            if group == [1, 2] { frames += partial }  // delivered twice
        }
        frames.shuffle(using: &rng)
        var machine = Self.live()
        let actions = Self.feed(&machine, frames)
        guard let (_, tasks) = Self.pass2Start(actions) else { Issue.record("pass 2 did not start"); return }
        var results = try Self.results(for: tasks, joint: machine.ledger.joint!)
        results += results.prefix(1)
        results.shuffle(using: &rng)
        try Self.expectExact(Self.closing(Self.feed(&machine, results)))
    }

    @Test func eepAccuracyOnlyWhenAManifestAsksForIt() throws {
        var machine = Self.live()
        let actions = Self.feed(&machine, [F.manifest(eepAccuracy: false)] + F.partial([0, 1, 2, 3]))
        guard let (_, tasks) = Self.pass2Start(actions) else { Issue.record("pass 2 did not start"); return }
        #expect(tasks.allSatisfy { $0.pass == .eep })
        let record = Self.closing(Self.feed(&machine, try Self.results(for: tasks, joint: machine.ledger.joint!)))
        #expect(record?.status == .final && record?.eepAccuracy == nil && record?.leep != nil)
    }

    // MARK: Timers

    @Test func missingChunksAreRepairedAfterSilenceAndAgainAfterTheInterval() {
        var machine = Self.live()
        #expect(Self.feed(&machine, [F.manifest()] + F.partial([0, 1])).allSatisfy { if case .repair = $0 { false } else { true } })
        #expect(machine.handle(.tick(Self.at(9.9))).allSatisfy { if case .repair = $0 { false } else { true } })
        let actions = machine.handle(.tick(Self.at(10)))
        let repairs = actions.compactMap { if case .repair(let tasks, let chunks) = $0 { (tasks, chunks) } else { nil } }
        #expect(repairs.count == 1 && repairs.first?.1 == 2)
        #expect(repairs.first?.0.flatMap(\.chunks).map(\.id) == [F.chunkID(2), F.chunkID(3)])
        #expect(repairs.first?.0.allSatisfy { $0.pass == .repair } == true)
        // Its marker read back counts the chunks once; no second repair before the interval.
        _ = Self.feed(&machine, [.runMarker(RunMarkerFrame(run: F.identity.id, marker: .repairIssued(chunks: 2)))], at: Self.at(10.1))
        #expect(machine.ledger.chunksRepaired == 2)
        #expect(machine.handle(.tick(Self.at(19))).allSatisfy { if case .repair = $0 { false } else { true } })
        // Issued again, the same chunks are not counted again: 2 chunks repaired, not 4.
        let again = machine.handle(.tick(Self.at(20.2))).compactMap { if case .repair(_, let chunks) = $0 { chunks } else { nil } }
        #expect(again == [0], "the chunks were repaired before")
        _ = Self.feed(&machine, [.runMarker(RunMarkerFrame(run: F.identity.id, marker: .repairIssued(chunks: 0)))], at: Self.at(20.3))
        #expect(machine.ledger.chunksRepaired == 2)
        // The repair's partial completes pass 1.
        #expect(Self.pass2Start(Self.feed(&machine, F.partial([2, 3]), at: Self.at(21))) != nil)
    }

    @Test func onlyChunksTheWorkersHavePassedAreRepairedUntilTheSilenceIsLong() {
        // Chunks 2 and 3 are missing, at offsets 2 and 3 of partition 0.
        func repaired(_ actions: [Machine.Action]) -> [ChunkID]? {
            for case .repair(let tasks, _) in actions { return tasks.flatMap(\.chunks).map(\.id) }
            return nil
        }
        var machine = Self.live()
        _ = Self.feed(&machine, [F.manifest()] + F.partial([0, 1]))
        // The workers are at offset 2: both chunks still wait in their backlog.
        let backlog = WorkerProgress(committed: [0: 2])
        #expect(repaired(machine.handle(.tick(Self.at(10), workers: backlog))) == nil)
        #expect(repaired(machine.handle(.tick(Self.at(30), workers: backlog))) == nil)
        // They commit past chunk 2: its sums were delivered and are not accepted, so it is repaired.
        #expect(repaired(machine.handle(.tick(Self.at(31), workers: WorkerProgress(committed: [0: 3])))) == [F.chunkID(2)])
        #expect(repaired(machine.handle(.tick(Self.at(40), workers: WorkerProgress(committed: [0: 3])))) == nil, "once an interval")
        // A minute of silence: every missing chunk, passed or not (a worker may be stuck).
        #expect(repaired(machine.handle(.tick(Self.at(60), workers: WorkerProgress(committed: [0: 3])))) == [F.chunkID(2), F.chunkID(3)])
        #expect(!WorkerProgress(committed: [:]).havePassed(RecordLocation(partition: 0, offset: 0)))
    }

    @Test func pass2TasksWithoutResultsAreIssuedAgain() throws {
        var machine = Self.live()
        guard let (_, tasks) = Self.pass2Start(Self.feed(&machine, [F.manifest()] + F.partial([0, 1, 2, 3]))) else {
            Issue.record("pass 2 did not start")
            return
        }
        let results = try Self.results(for: tasks, joint: machine.ledger.joint!)
        _ = Self.feed(&machine, [results[0]], at: Self.at(5))
        #expect(Self.reissued(machine.handle(.tick(Self.at(14.9)))).isEmpty)
        let again = Self.reissued(machine.handle(.tick(Self.at(15))))
        #expect(again == [[tasks[1]]], "only the task without a result")
        #expect(Self.reissued(machine.handle(.tick(Self.at(16)))).isEmpty)
        try Self.expectExact(Self.closing(Self.feed(&machine, [results[1]], at: Self.at(17))))
    }

    @Test func pass2TasksAreIssuedAgainLessAndLessOften() throws {
        var machine = Self.live()
        guard let (_, tasks) = Self.pass2Start(Self.feed(&machine, [F.manifest()] + F.partial([0, 1, 2, 3]))) else {
            Issue.record("pass 2 did not start")
            return
        }
        // Issued at 0 s: again after 10 s of silence, then 20 s, then 40 s.
        for (quiet, due) in [(9.9, 10.0), (29.9, 30.0), (69.9, 70.0)] {
            #expect(Self.reissued(machine.handle(.tick(Self.at(quiet)))).isEmpty, "not before \(due) s")
            #expect(Self.reissued(machine.handle(.tick(Self.at(due)))) == [tasks], "at \(due) s")
        }
        try Self.expectExact(Self.closing(Self.feed(&machine, try Self.results(for: tasks, joint: machine.ledger.joint!),
                                                    at: Self.at(71))))
    }

    @Test func incompleteThenALateShardFinishesTheRun() throws {
        var machine = Self.live()
        _ = Self.feed(&machine, [F.manifest(rows: [0, 1], partIndex: 0, partCount: 2)] + F.partial([0, 1, 2, 3]))
        #expect(Self.published(machine.handle(.tick(Self.at(59))), .incomplete).isEmpty)
        let incomplete = Self.published(machine.handle(.tick(Self.at(60))), .incomplete)
        #expect(incomplete.count == 1)
        #expect(incomplete.first?.reason?.contains("no record for 60 s") == true)
        #expect(incomplete.first?.chunksAccepted == 4)
        #expect(Self.published(machine.handle(.tick(Self.at(200))), .incomplete).isEmpty, "reported once per silence")
        // Not a failure: the missing part arrives and the run goes on to its score.
        let actions = Self.feed(&machine, [F.manifest(rows: [2, 3], partIndex: 1, partCount: 2)], at: Self.at(300))
        guard let (_, tasks) = Self.pass2Start(actions) else { Issue.record("pass 2 did not start"); return }
        try Self.expectExact(Self.closing(Self.feed(&machine, try Self.results(for: tasks, joint: machine.ledger.joint!), at: Self.at(301))))
    }

    @Test func aRunWithoutActivityIsAbandonedInEitherPass() {
        var collecting = Self.live()
        _ = Self.feed(&collecting, [F.manifest(rows: [0, 1], partIndex: 0, partCount: 2)])
        var record = Self.closing(collecting.handle(.tick(Self.at(3_600))))
        #expect(record?.status == .failed && record?.reason?.hasPrefix("abandoned: no record for 3600 s") == true)
        #expect(record?.reason?.contains("no complete manifest from shard 0 of 1") == true)
        #expect(collecting.isClosed)

        var pass2 = Self.live()
        _ = Self.feed(&pass2, [F.manifest()] + F.partial([0, 1, 2, 3]))
        // Its own re-issues are not activity: a run nobody answers is abandoned all the same.
        for second in stride(from: 10.0, to: 3_600, by: 10) { _ = pass2.handle(.tick(Self.at(second))) }
        record = Self.closing(pass2.handle(.tick(Self.at(3_600))))
        #expect(record?.reason == "abandoned: no record for 3600 s; pass 2 has 0 of 2 task results")
    }

    @Test func progressIsPublishedWhenItChangesAtMostOnceAnInterval() {
        var machine = Self.live()
        #expect(Self.published(Self.feed(&machine, [F.manifest()]), .progress).count == 1)
        #expect(Self.published(Self.feed(&machine, F.partial([0]), at: Self.at(0.5)), .progress).isEmpty, "too soon")
        // Rows are in: pass 1's progress is a streaming record, with the bracket of the joint so far.
        let later = Self.published(machine.handle(.tick(Self.at(1))), .streaming)
        #expect(later.count == 1 && later.first?.chunksAccepted == 1 && later.first?.chunksExpected == 4 && later.first?.pass == 1)
        #expect(later.first?.rowsSeen == 1 && later.first?.leepLower != nil && later.first?.leepEstimate == nil, "no sample, no estimate")
        #expect(Self.published(machine.handle(.tick(Self.at(5))), .streaming).isEmpty, "unchanged")
    }

    /// Rows the workers sampled give the streaming record an estimate of LEEP: the mean of
    /// log Σ_z θ_sz P̃_s(y_s|z) over sampled rows of accepted chunks (`LEEPEstimate`).
    @Test func streamingRecordsEstimateLEEPFromTheSampledRowsOfAcceptedChunks() throws {
        var machine = Self.live()
        let sample = { (row: Int) in
            Frame.rowSample(RowSampleFrame(
                run: F.identity, chunk: F.chunkID(row), sourceClasses: F.z, rows: [0], labels: [F.labels[row]],
                probabilities: F.rows[row]))
        }
        _ = Self.feed(&machine, [F.manifest(), sample(0), sample(1), sample(2)] + F.partial([0, 1]))
        let records = Self.published(machine.handle(.tick(Self.at(2))), .streaming)
        let record = try #require(records.first)
        // Rows 0 and 1 are accepted; row 2's sample waits for its chunk's sums.
        // Each row under the conditional of the final joint if the other 3 of the run's 4 rows
        // looked like the other row merged: that row's sums × 3, plus its own.
        let joint = machine.ledger.joint!
        var terms: [Double] = []
        for (row, other) in [(0, 1), (1, 0)] {
            var prediction = 0.0
            for source in 0..<F.z {
                let own = F.rows[row][source]
                let sameLabel = F.labels[other] == F.labels[row] ? F.rows[other][source] : 0
                prediction += own * (3 * sameLabel + own) / (3 * F.rows[other][source] + own)
            }
            terms.append(Foundation.log(prediction))
        }
        let mean = terms.reduce(0, +) / 2
        #expect(record.sampledRows == 2 && record.rowsSeen == 2)
        #expect(abs(record.leepEstimate! - mean) <= 1e-12 * abs(mean))
        #expect(record.leepEstimateLow! <= mean && mean <= record.leepEstimateHigh!)
        let bracket = try #require(LEEPBracket(joint: joint))
        #expect(record.leepLower == bracket.lower && record.leepUpper == bracket.upper)
    }

    // MARK: Failures

    @Test(arguments: FailureCase.allCases) func eachKindOfMismatchFailsTheRun(_ failure: FailureCase) {
        var machine = Self.live()
        let actions = Self.feed(&machine, failure.frames)
        let record = Self.closing(actions)
        #expect(record?.status == .failed)
        #expect(record?.reason?.contains(failure.reason) == true, "\(String(describing: record?.reason))")
        #expect(machine.isClosed)
        #expect(Self.pass2Start(actions) == nil)
    }

    enum FailureCase: CaseIterable, Sendable {
        case shardCount, sourceClassesOfAManifest, sourceClassesOfAPartial, otherBoundaries, strayChunk, rejection, noChunks
        case otherPair, strayClassCountFirst

        var frames: [Frame] {
            switch self {
            case .shardCount:
                [F.manifest(), .manifest(ManifestFrame(
                    run: F.identity, shard: 1, shardCount: 2, sourceClasses: F.z, targetClasses: 2, shardRows: 1, totalChunks: 1,
                    partIndex: 0, partCount: 1, chunks: []))]
            case .sourceClassesOfAManifest:
                [F.manifest(), .manifest(ManifestFrame(
                    run: F.identity, shard: 0, shardCount: 1, sourceClasses: F.z + 1, targetClasses: 2, shardRows: 4, totalChunks: 4,
                    partIndex: 0, partCount: 1, chunks: []))]
            case .sourceClassesOfAPartial:
                [.manifest(ManifestFrame(
                    run: F.identity, shard: 0, shardCount: 1, sourceClasses: F.z + 1, targetClasses: 2, shardRows: 4, totalChunks: 4,
                    partIndex: 0, partCount: 2, chunks: []))] + F.partial([0])
            case .otherBoundaries:
                [F.manifest(rows: [0, 1], partCount: 2), F.manifest(rows: [0, 2], partCount: 2)]
            case .strayChunk:
                F.partial([0, 1, 2, 3]) + [F.manifest(rows: [0, 1, 2], total: 3)]
            case .rejection:
                [F.manifest(), .chunkRejected(ChunkRejectedFrame(run: F.identity, chunk: F.chunkID(2), reason: "row 2: column 1 is nan"))]
            case .otherPair:
                [F.manifest(rows: [0, 1], partCount: 2), .manifest(ManifestFrame(
                    run: RunIdentity(id: F.identity.id, model: "m2", dataset: "d"), shard: 0, shardCount: 1, sourceClasses: F.z,
                    targetClasses: 2, shardRows: 4, totalChunks: 4, partIndex: 1, partCount: 2, chunks: []))]
            case .strayClassCountFirst:
                // A stray chunk with 4 source classes reaches the aggregator before the run's own
                // (3) and its manifest: the stray is blamed, whichever came first.
                [.partial(PartialFrame(
                    run: F.identity, partialID: PartialFrame.id(run: F.identity.id, chunks: [F.chunkID(9)]), targetClasses: 2,
                    sourceClasses: 4, sampleCount: 1, chunks: [F.chunkID(9)],
                    part: MatrixPart.split(cells: 8, bytesPerCell: PartialFrame.bytesPerCell, maxPayloadBytes: 1_000)[0],
                    jointSums: [Double](repeating: 0.125, count: 8), argmaxCounts: [1] + [Int64](repeating: 0, count: 7)))]
                    + F.partial([0, 1]) + [F.manifest()] + F.partial([2, 3])
            case .noChunks:
                [.manifest(ManifestFrame(
                    run: F.identity, shard: 0, shardCount: 1, sourceClasses: F.z, targetClasses: 2, shardRows: 0, totalChunks: 0,
                    partIndex: 0, partCount: 1, chunks: []))]
            }
        }

        var reason: String {
            switch self {
            case .shardCount: "says the run has 2 shards, an earlier manifest said 1"
            case .sourceClassesOfAManifest: "the manifest of shard 0 has 4 source classes, the run has 3"
            case .sourceClassesOfAPartial: "chunk shard 0 rows 0..<1 has 3 source classes, its run's manifest 4"
            case .strayClassCountFirst: "chunk shard 0 rows 9..<10 has 4 source classes, its run's manifest 3"
            case .otherBoundaries: "published again with other chunk boundaries"
            case .strayChunk: "is not in its shard's manifest"
            case .rejection: "row 2: column 1 is nan"
            case .noChunks: "the manifests list no chunks"
            case .otherPair: #"shard 0 scores model "m2" on data set "d", an earlier manifest model "m" on "d""#
            }
        }
    }

    @Test func passesThatDisagreeOnTheSampleCountFailTheRun() throws {
        var machine = Self.live()
        guard let (_, tasks) = Self.pass2Start(Self.feed(&machine, [F.manifest()] + F.partial([0, 1, 2, 3]))) else {
            Issue.record("pass 2 did not start")
            return
        }
        let bad = tasks.map {
            Frame.taskResult(TaskResultFrame(run: F.identity.id, taskID: $0.id, sampleCount: 1, logEEPSum: -1, hits: 0))
        }
        let record = Self.closing(Self.feed(&machine, bad))
        #expect(record?.reason == "pass 2 covered 2 samples but pass 1 covered 4")
    }

    // MARK: Replay

    /// The records an owner left on the runs topic for a run it took to its final score.
    static func history() throws -> (frames: [Frame], final: ScoreRecord) {
        var owner = live()
        var frames = [F.manifest()] + F.partial([0, 1]) + F.partial([2, 3])
        let actions = feed(&owner, frames)
        guard let (_, tasks) = pass2Start(actions) else { throw TestFailure("pass 2 did not start") }
        frames.append(.runMarker(RunMarkerFrame(run: F.identity.id, marker: .pass2Issued(taskIDs: tasks.map(\.id)))))
        let results = try self.results(for: tasks, joint: owner.ledger.joint!)
        frames += results
        guard let final = closing(feed(&owner, results)) else { throw TestFailure("no final score") }
        frames.append(.runMarker(RunMarkerFrame(run: F.identity.id, marker: .closed)))
        return (frames, final)
    }

    @Test func replayOfAClosedRunDecidesNothing() throws {
        let (frames, _) = try Self.history()
        var replay = Machine(run: F.identity.id, policy: Self.policy, firstSeen: Self.start)
        #expect(frames.flatMap { replay.handle(.record($0, at: Self.start)) }.isEmpty, "replaying only folds")
        #expect(replay.isClosed)
        #expect(replay.handle(.caughtUp(at: Self.at(100))).isEmpty)
    }

    @Test(arguments: 0...7) func replayThatStopsHalfWayGoesOnFromThere(stop: Int) throws {
        // A new owner replays the first `stop` records of the history, catches up, and sees the
        // rest live: whatever the earlier owner recorded is not redone, the score is the same.
        let (frames, final) = try Self.history()
        var replay = Machine(run: F.identity.id, policy: Self.policy, firstSeen: Self.start)
        for frame in frames.prefix(stop) { #expect(replay.handle(.record(frame, at: Self.start)).isEmpty) }
        var actions = replay.handle(.caughtUp(at: Self.at(1)))
        let markerIndex = frames.firstIndex { if case .runMarker = $0 { true } else { false } }!
        // Pass 2 is started again only if the replay stopped with pass 1 complete but its marker
        // not yet read (the earlier owner may have died before publishing it).
        let startsAgain = Self.pass2Start(actions) != nil
        #expect(startsAgain == (stop == markerIndex), "pass 1 completes with the record before the marker")
        for frame in frames.dropFirst(stop) { actions += replay.handle(.record(frame, at: Self.at(2))) }
        let record = Self.closing(actions)
        if stop < frames.count {
            #expect(record == final)
        } else {
            #expect(record == nil, "the closed marker was replayed: nothing to publish")
        }
        #expect(replay.isClosed)
    }

    @Test func replayRunsTimersOnRecordTimes() {
        // The last record is 50 s old when the new owner catches up: the silence counts.
        var replay = Machine(run: F.identity.id, policy: Self.policy, firstSeen: Self.start)
        for frame in [F.manifest()] + F.partial([0, 1]) { _ = replay.handle(.record(frame, at: Self.start)) }
        let actions = replay.handle(.caughtUp(at: Self.at(50)))
        #expect(actions.contains { if case .repair = $0 { true } else { false } })
    }
}

struct TestFailure: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
