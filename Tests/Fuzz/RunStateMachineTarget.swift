#if DEBUG || LEEP_FUZZ  // @testable import needs a module built for testing (debug, or ops/fuzz's -enable-testing)
import Foundation
import LEEPCore
import WireFormat

@testable import Pipeline

/// The run state machine fed a script of events — records of one run (honest or with a field
/// wrong, see `RunWorld`, and raw bytes that decode to one of its frames), the partition caught
/// up, ticks with the workers' progress — at times the script chooses. After every event the
/// lifecycle's invariants must hold (`Observer`): no decision while replaying, a closed run stays
/// closed and silent, a final score only when every listed chunk is counted exactly once with
/// sample counts that agree, and every score record encodes (the aggregator publishes it as JSON).
enum RunStateMachineTarget {
    static let start = Timestamp(milliseconds: 1_000_000)

    /// Plays the script; returns how the machine closed the run, if it did (seeds are checked by it).
    @discardableResult
    static func run(_ bytes: UnsafeRawBufferPointer) -> ScoreRecord.Status? {
        var input = FuzzInput(bytes)
        let world = RunWorld(&input)
        let policy = RunStateMachine.Policy(
            repairAfter: .seconds(10), repairAnywayAfter: .seconds(60), incompleteAfter: .seconds(60), abandonAfter: .seconds(3_600),
            progressInterval: .seconds(1), chunksPerTask: world.chunksPerTask)
        var machine = RunStateMachine(run: RunWorld.identity.id, policy: policy, firstSeen: start, isLive: input.bool())
        var observer = Observer()
        var now = start
        while !input.isAtEnd {
            now = now + .milliseconds([0, 1, 400, 1_000, 10_000, 60_000, 3_600_000, -5_000][input.int(in: 0...7)])
            let time = now
            let records = { (frames: [Frame]) in frames.compactMap(RunWorld.delivered).map { RunStateMachine.Event.record($0, at: time) } }
            let events: [RunStateMachine.Event] = switch input.int(in: 0...15) {
            case 0...3: records([world.manifest(&input)])
            case 4...6: records(world.partial(&input))
            case 7, 8: records([world.result(&input, tasks: observer.tasks)])
            case 9: records([world.marker(&input, tasks: observer.tasks)])
            case 10: RunWorld.rawFrame(&input).map { [.record($0, at: now)] } ?? []
            case 11: [.caughtUp(at: now)]
            case 12: records([world.rejection(&input)])
            default: [.tick(now, workers: input.bool() ? nil : WorkerProgress(committed: [0: Int64(input.int(in: 0...20)), 1: Int64(input.int(in: 0...20))]))]
            }
            for event in events { observer.check(machine.handle(event), of: machine) }
        }
        return observer.closedAs
    }

    /// Checks each step's actions against the machine's state, and remembers what later records
    /// of the script may refer to (the tasks issued).
    struct Observer {
        private(set) var tasks: [RunStateMachine.TaskPlan] = []
        private var taskIDs: Set<UInt64> = []
        private(set) var closedAs: ScoreRecord.Status?
        private var closed = false
        private var counted: [AggregatorMetric: Int] = [:]

        mutating func check(_ actions: [RunStateMachine.Action], of machine: RunStateMachine) {
            require(machine.isLive || actions.isEmpty, "a decision while replaying")
            require(!closed || (actions.isEmpty && machine.isClosed), "a closed run acted or reopened")
            for action in actions {
                switch action {
                case .issue(let tables, let plan, let marker?):
                    let listed = machine.ledger.expectedChunks.map(\.id)
                    require(machine.ledger.isPass1Complete, "a task step started before pass 1 was complete")
                    require(plan.flatMap(\.chunks).map(\.id).sorted() == listed.sorted(), "a step's tasks do not cover each chunk once")
                    for case .conditional(let conditional) in tables {
                        require(conditional.targetClasses == machine.ledger.joint?.targetClasses, "the conditional's Y is not the joint's")
                    }
                    switch marker {
                    case .pass2Issued(let ids), .tasksIssued(_, let ids): require(ids == plan.map(\.id), "the marker lists other tasks")
                    default: require(false, "a step recorded by \(marker)")
                    }
                    remember(plan)
                case .issue(_, let plan, nil):
                    require(plan.allSatisfy { machine.ledger.results[$0.id] == nil }, "a task with its result issued again")
                    remember(plan)
                case .repair(let plan, let chunks):
                    let missing = Set(machine.ledger.missingChunks.map(\.id))
                    let repaired = plan.flatMap(\.chunks).map(\.id)
                    // `chunks` counts those never repaired before.
                    require(chunks <= repaired.count && repaired.allSatisfy(missing.contains), "a repair of chunks that are not missing")
                    remember(plan)
                case .publish(let record):
                    require([.progress, .streaming, .incomplete, .bracketed].contains(record.status), "published \(record.status) without closing")
                    if record.status == .streaming {
                        // Pass 1 with rows in: their count, the bracket of the joint so far, an estimate inside its interval.
                        let joint = machine.ledger.joint
                        require(record.pass == 1 && record.rowsSeen == joint?.sampleCount, "a streaming record of other rows than the joint's")
                        let bracket = joint.flatMap(LEEPBracket.init(joint:))
                        require(record.leepLower == bracket?.lower && record.leepUpper == bracket?.upper, "a streaming bracket not of the joint")
                        if let estimate = record.leepEstimate {
                            require(record.leepEstimateLow! <= estimate && estimate <= record.leepEstimateHigh!, "an estimate outside its interval")
                        }
                    }
                    if record.status == .bracketed {
                        require(machine.ledger.isPass1Complete, "a bracket before pass 1 was complete")
                        let bracket = machine.ledger.joint.flatMap(LEEPBracket.init(joint:))
                        require(record.leepLower == bracket?.lower && record.leepUpper == bracket?.upper, "a bracket not of the joint")
                    }
                    checkRecord(record)
                case .close(let record):
                    require(!closed, "closed twice")
                    closed = true
                    closedAs = record.status
                    checkRecord(record)
                    if record.status == .final { checkFinal(record, machine.ledger) } else { require(record.status == .failed, "closed as \(record.status)") }
                case .compute:
                    // Asked for only by runs with features, once pass 1 is settled.
                    require(machine.ledger.features != nil && machine.ledger.isPass1Complete, "a computation for a run without features")
                case .count(let metric):
                    counted[metric, default: 0] += 1
                    // Only live records are counted, each once: never more than the ledger holds.
                    require((counted[.partialAccepted] ?? 0) <= machine.ledger.acceptedPartials, "more partials counted than accepted")
                    require((counted[.duplicateDropped] ?? 0) <= machine.ledger.duplicatesDropped, "more duplicates counted than dropped")
                }
            }
            closed = closed || machine.isClosed
            if case .collecting = machine.state { LedgerInvariants.check(machine.ledger) }
            if case .tasks = machine.state { LedgerInvariants.check(machine.ledger) }
        }

        private mutating func remember(_ plan: [RunStateMachine.TaskPlan]) {
            for task in plan where taskIDs.insert(task.id).inserted { tasks.append(task) }
        }

        /// A final score counts every listed chunk once, and its n is their rows.
        private func checkFinal(_ record: ScoreRecord, _ ledger: RunLedger) {
            require(ledger.isPass1Complete, "a final score before pass 1 was complete")
            LedgerInvariants.check(ledger)
            let rows = RunWorld.rows(ledger.expectedChunks.map(\.id))
            require(record.n.map { $0 > 0 && UInt64($0) == rows } == true, "final n = \(String(describing: record.n)), the manifests list \(rows) rows")
            require(record.eepAccuracy.map { (0...1).contains($0) } ?? true, "EEP accuracy \(String(describing: record.eepAccuracy))")
            // Pass-2 results come from the script, so LEEP itself may lie outside; its bracket is the joint's.
            if record.leep != nil {
                let bracket = ledger.joint.flatMap(LEEPBracket.init(joint:))
                require(record.leepLower == bracket?.lower && record.leepUpper == bracket?.upper, "a final bracket not of the joint")
            }
        }

        /// Every record the machine emits is published as JSON, by an encoder that must not fail.
        private func checkRecord(_ record: ScoreRecord) {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            require((try? encoder.encode(record)) != nil, "a \(record.status) record does not encode as JSON: \(record)")
            if let accepted = record.chunksAccepted, let expected = record.chunksExpected {
                require(accepted <= expected, "\(accepted) of \(expected) chunks accepted")
            }
            if let done = record.tasksDone, let expected = record.tasksExpected { require(done <= expected, "\(done) of \(expected) tasks done") }
        }
    }
}
#endif
