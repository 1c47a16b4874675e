import Kafka
import LEEPCore
import Synchronization
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// Every transition of a runs partition's life without a broker: the barrier a new owner
/// writes, the replay up to it, the closed runs it learns, dead letters deferred and cancelled,
/// the commits, a revocation; then random scripts of events against the invariants.
@Suite struct PartitionStateMachineTests {
    typealias Machine = PartitionStateMachine
    typealias F = RunFixture
    static let start = Timestamp(milliseconds: 1_700_000_000_000)
    static let policy = RunStateMachine.Policy()

    /// A machine whose barrier tokens are 1, 2, 3, …
    static func machine() -> Machine {
        let counter = Mutex<UInt64>(0)
        return Machine(partition: 0, policy: policy, makeToken: { counter.withLock { $0 += 1; return $0 } })
    }

    static func record(_ offset: Int64, _ frame: Frame) -> Machine.Record {
        Machine.Record(offset: offset, timestamp: start, content: .frame(frame))
    }

    static func refused(_ offset: Int64) -> Machine.Record {
        Machine.Record(
            offset: offset, timestamp: start,
            content: .refused(deadLetter: OutgoingRecord(topic: "dead", value: [UInt8(offset)]), reason: "bad \(offset)"))
    }

    static func barrier(_ offset: Int64, token: UInt64) -> Machine.Record {
        record(offset, .partitionMarker(PartitionMarkerFrame(.barrier(token: token))))
    }

    static func rejected(_ run: String) -> Frame {
        .chunkRejected(ChunkRejectedFrame(run: RunIdentity(id: run, model: "m", dataset: "d"), chunk: F.chunkID(0), reason: "bad"))
    }

    /// A machine through its barrier's writing (token 1, no closed runs) and back: live.
    static func live() -> Machine {
        var machine = machine()
        _ = machine.handle(.roundStarted(at: start))
        _ = machine.handle(.barrierWritten(token: 1, closedRuns: [], at: start))
        _ = machine.handle(.record(barrier(0, token: 1), at: start))
        return machine
    }

    @Test func aNewOwnerAsksForABarrierUntilOneIsWrittenAndAgainOnlyWhenItIsLate() {
        var machine = Self.machine()
        guard case .writeBarrier(1)? = machine.handle(.roundStarted(at: Self.start)).first else {
            Issue.record("no barrier asked for")
            return
        }
        // A round that asked and failed before writing it: the next round asks again, anew.
        guard case .writeBarrier(2)? = machine.handle(.roundStarted(at: Self.start)).first else {
            Issue.record("an unwritten barrier is not asked for again")
            return
        }
        _ = machine.handle(.barrierWritten(token: 2, closedRuns: [], at: Self.start))
        #expect(machine.phase == .replaying(barrier: 2, sentAt: Self.start))
        #expect(machine.handle(.roundStarted(at: Self.start + .seconds(9))).isEmpty)
        guard case .writeBarrier(3)? = machine.handle(.roundStarted(at: Self.start + .seconds(10))).first else {
            Issue.record("a lost barrier is not written again")
            return
        }
        _ = machine.handle(.barrierWritten(token: 3, closedRuns: ["ignored"], at: Self.start + .seconds(10)))
        #expect(machine.closed.isEmpty, "the closed runs are learnt with the first barrier only")
        _ = machine.handle(.record(Self.barrier(0, token: 1), at: Self.start))
        _ = machine.handle(.record(Self.barrier(1, token: 2), at: Self.start))
        #expect(!machine.isLive, "an older barrier of this owner is history")
        let actions = machine.handle(.record(Self.barrier(2, token: 3), at: Self.start))
        #expect(machine.isLive)
        guard case .caughtUp(openRuns: 0)? = actions.last else { Issue.record("not caught up: \(actions)"); return }
        #expect(machine.handle(.barrierWritten(token: 4, closedRuns: [], at: Self.start)).isEmpty)
        #expect(machine.isLive, "a barrier written once caught up changes nothing")
    }

    @Test func recordsBeforeTheBarrierWaitAndReplayDecidesNothingUntilCaughtUp() {
        var machine = Self.machine()
        _ = machine.handle(.roundStarted(at: Self.start))
        let history = [F.manifest()] + F.partial([0, 1, 2, 3])
        for (offset, frame) in history.enumerated() {
            #expect(machine.handle(.record(Self.record(Int64(offset), frame), at: Self.start)).isEmpty)
        }
        #expect(machine.runs.isEmpty, "nothing applied before the closed runs are known")
        #expect(machine.handle(.barrierWritten(token: 1, closedRuns: [], at: Self.start)).isEmpty, "replay decides nothing")
        #expect(machine.runs[F.identity.id]?.machine.ledger.isPass1Complete == true)
        let actions = machine.handle(.record(Self.barrier(Int64(history.count), token: 1), at: Self.start))
        guard actions.count == 2, case .forward(let run, let decided) = actions[0], case .caughtUp(openRuns: 1) = actions[1],
              case .issue(_, let tasks, .pass2Issued?)? = decided.first
        else {
            Issue.record("caught up without pass 2: \(actions)")
            return
        }
        #expect(run == F.identity.id && !tasks.isEmpty)
    }

    @Test func aRunWaitingForItsDecompositionHoldsUpNoOtherRun() throws {
        typealias Features = FeaturePipelineTests
        var machine = Self.live()
        var offset: Int64 = 1
        func feed(_ frames: [Frame]) -> [Machine.Action] {
            frames.flatMap { frame in
                defer { offset += 1 }
                return machine.handle(.record(Self.record(offset, frame), at: Self.start))
            }
        }
        func decided(_ actions: [Machine.Action], by run: String) -> [RunStateMachine.Action] {
            actions.flatMap { action -> [RunStateMachine.Action] in
                guard case .forward(let owner, let decided) = action, owner == run else { return [] }
                return decided
            }
        }
        // A run with features through pass 1 and LEEP's pass 2: it asks for SFDA's first fit,
        // and waits for it.
        let data = Features.Data(seed: 4)
        _ = feed([Features.manifest()] + Features.partials(data, chunks: Array(0..<(Features.rows / Features.rowsPerChunk))))
        let joint = try #require(machine.runs[Features.identity.id]?.machine.ledger.joint)
        let asked = decided(feed(try Features().pass2(data, joint: joint).1), by: Features.identity.id)
            .compactMap { if case .compute(let computation) = $0 { computation } else { nil } }
        #expect(asked.map(\.kind) == [.sfdaFirstFit])
        // Meanwhile another run of the partition goes through both passes and closes.
        let other = decided(feed([F.manifest()] + F.partial([0, 1, 2, 3])), by: F.identity.id)
        guard let tasks = other.lazy.compactMap({ if case .issue(_, let tasks, _) = $0 { tasks } else { nil } }).first else {
            Issue.record("the other run did not reach pass 2: \(other)")
            return
        }
        let (_, results) = try F.pass2Results(joint: machine.runs[F.identity.id]!.machine.ledger.joint!, tasks: [[0, 1, 2, 3]])
        #expect(tasks.count == 1)
        #expect(decided(feed(results), by: F.identity.id).contains { if case .close(let record) = $0 { record.status == .final } else { false } })
        // The first run, still waiting, asks for nothing more; its value moves it on.
        #expect(!decided(machine.handle(.tick(Self.start, workers: nil)), by: Features.identity.id)
            .contains { if case .compute = $0 { true } else { false } })
        let moved = decided(
            machine.handle(.computed(run: Features.identity.id, .sfdaFirstFit, asked[0](), at: Self.start)), by: Features.identity.id)
        guard case .issue(_, _, .tasksIssued(.sfdaMix, _)?)? = moved.first else {
            Issue.record("the fit did not start SFDA's mixing pass: \(moved)")
            return
        }
        #expect(machine.handle(.computed(run: "no-such-run", .sfdaFirstFit, asked[0](), at: Self.start)).isEmpty)
    }

    @Test func aRunsCountsBecomeMetricsAndAreNotForwarded() {
        var machine = Self.live()
        let frames = [F.manifest()] + F.partial([0, 1]) + F.partial([0, 1])
        let actions = frames.enumerated().flatMap { offset, frame in
            machine.handle(.record(Self.record(Int64(offset + 1), frame), at: Self.start))
        }
        let metrics = actions.compactMap { if case .metric(let metric) = $0 { metric } else { nil } }
        #expect(metrics.filter { $0 != .recordConsumed } == [.partialAccepted, .duplicateDropped])
        #expect(metrics.filter { $0 == .recordConsumed }.count == frames.count)
        for case .forward(_, let decided) in actions {
            #expect(!decided.contains { if case .count = $0 { true } else { false } })
        }
    }

    @Test func lateRecordsOfAClosedRunChangeNothing() {
        var machine = Self.machine()
        _ = machine.handle(.roundStarted(at: Self.start))
        _ = machine.handle(.barrierWritten(token: 1, closedRuns: [F.identity.id], at: Self.start))
        #expect(machine.handle(.record(Self.record(0, F.manifest()), at: Self.start)).isEmpty)
        #expect(machine.runs.isEmpty && machine.nextOffset == 1)
    }

    @Test func aRunClosedByAMarkerInReplayIsRecordedOnTheClosedTopic() {
        var machine = Self.machine()
        _ = machine.handle(.roundStarted(at: Self.start))
        _ = machine.handle(.barrierWritten(token: 1, closedRuns: [], at: Self.start))
        _ = machine.handle(.record(Self.record(0, F.manifest()), at: Self.start))
        let actions = machine.handle(.record(
            Self.record(1, .runMarker(RunMarkerFrame(run: F.identity.id, marker: .closed))), at: Self.start))
        #expect(actions.count == 2)
        guard case .recordClosed(F.identity.id) = actions[0],
              case .metric(.forget(F.identity.id, F.identity.model, F.identity.dataset)) = actions[1]
        else {
            Issue.record("\(actions)")
            return
        }
        #expect(machine.closed == [F.identity.id] && machine.runs.isEmpty)
    }

    @Test func malformedRecordsWaitForCatchUpUnlessAnEarlierOwnerDeadLetteredThem() {
        var machine = Self.machine()
        _ = machine.handle(.roundStarted(at: Self.start))
        _ = machine.handle(.barrierWritten(token: 1, closedRuns: [], at: Self.start))
        for offset in [3, 5, 7] as [Int64] {
            #expect(machine.handle(.record(Self.refused(offset), at: Self.start)).isEmpty, "deferred in replay")
        }
        _ = machine.handle(.record(Self.record(8, .partitionMarker(PartitionMarkerFrame(.deadLettered(offset: 5)))), at: Self.start))
        let actions = machine.handle(.record(Self.barrier(9, token: 1), at: Self.start))
        let letters = actions.compactMap { action -> Int64? in
            if case .deadLetter(_, let offset, _) = action { offset } else { nil }
        }
        #expect(letters == [3, 7], "in offset order, without the one an earlier owner dead-lettered")
        let live = machine.handle(.record(Self.refused(10), at: Self.start))
        guard case .deadLetter(_, 10, "bad 10")? = live.first, case .metric(.deadLettered)? = live.last else {
            Issue.record("\(live)")
            return
        }
    }

    @Test func commitsStartAtTheOldestOpenRunAndRepeatOnlyWhenTheyMove() {
        var machine = Self.live()
        #expect(machine.handle(.tick(Self.start, workers: nil)).commits == [1], "nothing open: after the barrier")
        _ = machine.handle(.committed(1))
        #expect(machine.handle(.tick(Self.start, workers: nil)).commits.isEmpty)
        _ = machine.handle(.record(Self.record(10, F.manifest()), at: Self.start))
        _ = machine.handle(.record(Self.record(11, Self.rejected("other")), at: Self.start))
        #expect(machine.closed == ["other"], "a rejected chunk fails and closes its run at once")
        #expect(machine.handle(.tick(Self.start, workers: nil)).commits == [10], "the first record of the open run")
        _ = machine.handle(.committed(10))
        let failing = machine.handle(.record(Self.record(12, Self.rejected(F.identity.id)), at: Self.start))
        guard case .forward(F.identity.id, let decided)? = failing.first(where: { if case .forward = $0 { true } else { false } }),
              case .close(let record)? = decided.first
        else {
            Issue.record("\(failing)")
            return
        }
        #expect(record.status == .failed)
        #expect(machine.handle(.tick(Self.start, workers: nil)).commits == [13], "no open run: after the last record")
    }

    @Test func aRevokedPartitionEmitsNothing() {
        var machine = Self.live()
        _ = machine.handle(.record(Self.record(1, F.manifest()), at: Self.start))
        #expect(machine.handle(.revoked).isEmpty)
        #expect(machine.handle(.record(Self.refused(2), at: Self.start)).isEmpty)
        #expect(machine.handle(.tick(Self.start + .seconds(3_600), workers: nil)).isEmpty)
        #expect(machine.handle(.roundStarted(at: Self.start)).isEmpty)
        #expect(machine.runs.isEmpty)
    }

    // MARK: Random scripts

    /// One random script's records: manifests and partials of run-1, rejections that fail
    /// other runs, closed markers, malformed records, dead-letter markers.
    static func randomRecord(_ offset: Int64, using generator: inout SeededGenerator) -> Machine.Record {
        switch Int.random(in: 0..<10, using: &generator) {
        case 0: return record(offset, F.manifest())
        case 1...3: return record(offset, F.partial([Int.random(in: 0..<4, using: &generator)])[0])
        case 4: return record(offset, rejected("run-\(Int.random(in: 2..<5, using: &generator))"))
        case 5: return record(offset, .runMarker(RunMarkerFrame(run: "run-\(Int.random(in: 1..<5, using: &generator))", marker: .closed)))
        case 6: return refused(offset)
        case 7: return record(offset, .partitionMarker(PartitionMarkerFrame(.deadLettered(offset: Int64.random(in: 0...offset, using: &generator)))))
        default: return record(offset, .manifest({ guard case .manifest(let m) = F.manifest() else { fatalError() }; return m }()))
        }
    }

    /// Random scripts: a replay never forwards a decision, dead-letters or commits; a revoked
    /// machine emits nothing; a commit never passes a record not yet read nor the first record
    /// of an open run; and a new owner that replays from the last commit holds the same open
    /// runs with the same accepted chunks: no record is lost or handled twice across the
    /// revoke/assign.
    @Test(arguments: Array(UInt64(1)...200))
    func randomScriptsKeepTheInvariants(seed: UInt64) {
        var generator = SeededGenerator(seed: seed)
        var machine = Self.machine()
        var log: [Machine.Record] = []
        var caughtUp = false
        var asked: UInt64?
        var committed: Int64?
        var now = Self.start
        for step in 0..<Int.random(in: 5...60, using: &generator) {
            now = now + .milliseconds(Int64.random(in: 0...3_000, using: &generator))
            let actions: [Machine.Action]
            switch Int.random(in: 0..<10, using: &generator) {
            case 0:
                actions = machine.handle(.roundStarted(at: now))
                for case .writeBarrier(let token) in actions { asked = token }
            case 1:
                guard let token = asked else { continue }
                actions = machine.handle(.barrierWritten(token: token, closedRuns: [], at: now))
                asked = nil
            case 2:
                // The barrier comes back (this owner's latest, or a stale one).
                let token: UInt64 = Bool.random(using: &generator) ? UInt64(step) : (machine.phase.barrier ?? 99)
                let record = Self.barrier(Int64(log.count), token: token)
                log.append(record)
                actions = machine.handle(.record(record, at: now))
            case 3:
                actions = machine.handle(.tick(now, workers: nil))
                for offset in actions.commits {
                    #expect(offset <= Int64(log.count), "a commit past the records read")
                    #expect(machine.runs.values.allSatisfy { offset <= $0.firstOffset }, "a commit past an open run's start")
                    _ = machine.handle(.committed(offset))
                    committed = offset
                }
            default:
                let record = Self.randomRecord(Int64(log.count), using: &generator)
                log.append(record)
                actions = machine.handle(.record(record, at: now))
            }
            for action in actions {
                if case .caughtUp = action { caughtUp = true }
                let decides = switch action {
                case .forward, .deadLetter, .commit: true
                default: false
                }
                let caughtUpNow = actions.contains { if case .caughtUp = $0 { true } else { false } }
                #expect(!decides || caughtUp || caughtUpNow, "a replay emitted \(action)")
            }
        }
        // A new owner replays from the last commit (or the start) up to the same point.
        if machine.isLive, machine.phase != .revoked {
            let expected = machine.runs.mapValues { $0.machine.ledger.accepted }
            var successor = Self.machine()
            _ = successor.handle(.roundStarted(at: now))
            _ = successor.handle(.barrierWritten(token: 1, closedRuns: machine.closed.subtracting(machine.runs.keys), at: now))
            for record in log.dropFirst(Int(committed ?? 0)) { _ = successor.handle(.record(record, at: now)) }
            _ = successor.handle(.record(Self.barrier(Int64(log.count), token: 1), at: now))
            #expect(successor.runs.mapValues { $0.machine.ledger.accepted } == expected, "seed \(seed)")
        }
        #expect(machine.handle(.revoked).isEmpty)
        #expect(machine.handle(.tick(now + .seconds(86_400 * 2), workers: nil)).isEmpty, "revoked: nothing")
    }
}

extension Array where Element == PartitionStateMachine.Action {
    /// The offsets these actions commit.
    var commits: [Int64] { compactMap { if case .commit(let offset) = $0 { offset } else { nil } } }
}

extension PartitionStateMachine.Phase {
    /// The barrier a replaying partition waits for.
    var barrier: UInt64? { if case .replaying(let token, _) = self { token } else { nil } }
}
