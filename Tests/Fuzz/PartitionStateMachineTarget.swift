#if DEBUG || LEEP_FUZZ  // @testable import needs a module built for testing (debug, or ops/fuzz's -enable-testing)
import Kafka
import Synchronization
import WireFormat

@testable import Pipeline

/// `partition-state-machine`: one runs partition's life fed a script of events — a new owner's
/// barrier asked, written and read back (or a stale one), the records of a run (`RunWorld`:
/// honest or with a field wrong, raw bytes, malformed records, dead-letter markers), the
/// markers the owner itself writes coming back, rounds with the workers' progress, commits,
/// a revocation — at times the script chooses. After every event the partition's invariants
/// must hold (`Observer`); at the end, a new owner that replays from the last commit must hold
/// the same open runs with the same accepted chunks: no record lost or counted twice across
/// the hand-over.
enum PartitionStateMachineTarget {
    static let start = Timestamp(milliseconds: 1_000_000)

    /// Plays the script; returns the runs closed with a final score (seeds are checked by it).
    @discardableResult
    static func run(_ bytes: UnsafeRawBufferPointer) -> Int {
        var input = FuzzInput(bytes)
        let world = RunWorld(&input)
        let policy = RunStateMachine.Policy(
            repairAfter: .seconds(10), repairAnywayAfter: .seconds(60), incompleteAfter: .seconds(60), abandonAfter: .seconds(3_600),
            progressInterval: .seconds(1), chunksPerTask: world.chunksPerTask)
        var machine = makeMachine(policy: policy)
        var observer = Observer()
        var now = start
        while !input.isAtEnd {
            now = now + .milliseconds([0, 1, 400, 1_000, 10_000, 60_000, 3_600_000, -5_000][input.int(in: 0...7)])
            let time = now
            let read = { (frames: [Frame]) in frames.map { observer.append(RunWorld.delivered($0)) } }
            var events: [PartitionStateMachine.Event] = []
            switch input.int(in: 0...15) {
            case 0...3: events = read([world.manifest(&input)]).map { .record($0, at: time) }
            case 4...6: events = read(world.partial(&input)).map { .record($0, at: time) }
            case 7, 8: events = read([world.result(&input, tasks: observer.tasks)]).map { .record($0, at: time) }
            case 9: events = read([world.marker(&input, tasks: observer.tasks)]).map { .record($0, at: time) }
            case 10: events = RunWorld.rawFrame(&input).map { [.record(observer.append($0), at: time)] } ?? []
            case 11: events = [.roundStarted(at: now)]
            case 12:
                let closed: Set<String> = input.int(in: 0...3) == 0 ? [RunWorld.identity.id] : []
                events = observer.asked.map { [.barrierWritten(token: $0, closedRuns: closed, at: time)] } ?? []
            case 13:
                // This owner's barrier comes back, or a stale one of an earlier owner.
                let token = input.bool() ? observer.written ?? 0 : 0
                events = [.record(observer.append(.partitionMarker(PartitionMarkerFrame(.barrier(token: token)))), at: now)]
            case 14:
                let workers = input.bool() ? nil : WorkerProgress(committed: [0: Int64(input.int(in: 0...20)), 1: Int64(input.int(in: 0...20))])
                events = [.tick(now, workers: workers)]
            default:
                switch input.int(in: 0...4) {
                case 0: events = [.record(observer.append(nil), at: now)]
                case 1:
                    let offset = Int64(input.int(in: 0...max(0, observer.log.count - 1)))
                    events = [.record(observer.append(.partitionMarker(PartitionMarkerFrame(.deadLettered(offset: offset)))), at: now)]
                case 2: events = read([world.rejection(&input)]).map { .record($0, at: time) }
                case 3: events = observer.writtenBack().map { .record($0, at: time) }
                default: events = [.revoked]
                }
            }
            for event in events {
                observer.check(event, machine.handle(event), of: machine)
                for offset in observer.committing { observer.check(.committed(offset), machine.handle(.committed(offset)), of: machine) }
            }
        }
        if machine.isLive { observer.checkHandOver(from: machine, policy: policy, at: now) }
        return observer.finals
    }

    static func makeMachine(policy: RunStateMachine.Policy) -> PartitionStateMachine {
        let tokens = Mutex<UInt64>(0)
        return PartitionStateMachine(partition: 0, policy: policy, makeToken: { tokens.withLock { $0 += 1; return $0 } })
    }

    /// The partition's log as read so far, and the checks of each step's actions against it.
    struct Observer {
        private(set) var log: [PartitionStateMachine.Record] = []
        /// Tasks the runs issued, for the results and markers of the script.
        private(set) var tasks: [RunStateMachine.TaskPlan] = []
        /// The barrier asked for and not yet written; the last one written.
        private(set) var asked: UInt64?
        private(set) var written: UInt64?
        /// Offsets the last tick asked to commit (acknowledged at once).
        private(set) var committing: [Int64] = []
        private(set) var finals = 0
        /// What the owner writes to the partition (its markers), to come back when the script says.
        private var writes: [Frame] = []
        private var live = false
        private var revoked = false
        private var committed: Int64?
        private var deadLettered: Set<Int64> = []
        private var closedRuns: Set<String> = []

        /// Appends a record to the log: a frame, or (nil) a record the decoder refuses.
        mutating func append(_ frame: Frame?) -> PartitionStateMachine.Record {
            let offset = Int64(log.count)
            let content: PartitionStateMachine.Record.Content = frame.map { .frame($0) }
                ?? .refused(deadLetter: OutgoingRecord(topic: "dead", value: [UInt8(truncatingIfNeeded: offset)]), reason: "refused")
            let record = PartitionStateMachine.Record(offset: offset, timestamp: start + .milliseconds(offset), content: content)
            log.append(record)
            return record
        }

        /// The markers the owner wrote, read back in the order written.
        mutating func writtenBack() -> [PartitionStateMachine.Record] {
            defer { writes = [] }
            return writes.map { append($0) }
        }

        mutating func check(_ event: PartitionStateMachine.Event, _ actions: [PartitionStateMachine.Action], of machine: PartitionStateMachine) {
            committing = []
            require(!revoked || actions.isEmpty, "a revoked partition emitted \(actions)")
            if case .revoked = event { revoked = true }
            let caughtUpNow = actions.contains { if case .caughtUp = $0 { true } else { false } }
            require(!caughtUpNow || machine.isLive, "caught up but not live")
            for action in actions {
                let decides = switch action {
                case .forward, .deadLetter, .commit, .metric(.recordConsumed), .metric(.partialAccepted), .metric(.duplicateDropped),
                     .metric(.deadLettered): true
                case .writeBarrier, .recordClosed, .caughtUp, .metric(.forget): false
                }
                require(!decides || live || caughtUpNow, "a replay emitted \(action)")
                switch action {
                case .writeBarrier(let token):
                    require(token != asked && token != written, "a barrier token used twice")
                    asked = token
                case .forward(let run, let decided):
                    require(!closedRuns.contains(run), "run \(run) acted after it closed")
                    check(decided, of: run)
                case .deadLetter(_, let offset, _):
                    require(deadLettered.insert(offset).inserted, "offset \(offset) dead-lettered twice")
                    guard log.indices.contains(Int(offset)), case .refused = log[Int(offset)].content else {
                        require(false, "dead-lettered offset \(offset) is no refused record")
                        return
                    }
                    writes.append(.partitionMarker(PartitionMarkerFrame(.deadLettered(offset: offset))))
                case .recordClosed(let run):
                    closedRuns.insert(run)
                case .commit(let offset):
                    require(offset <= Int64(log.count), "a commit past the records read")
                    require(offset >= (committed ?? 0), "a commit went back from \(committed ?? 0) to \(offset)")
                    require(machine.runs.values.allSatisfy { offset <= $0.firstOffset }, "a commit past an open run's first record")
                    committing.append(offset)
                    committed = offset
                case .caughtUp(let openRuns):
                    require(openRuns == machine.runs.count, "caught up with \(openRuns) open runs, holds \(machine.runs.count)")
                case .metric:
                    break
                }
            }
            if case .barrierWritten(let token, _, _) = event {
                asked = nil
                written = token
            }
            live = machine.isLive
        }

        /// A run's forwarded actions: markers its owner writes, tasks the script may answer.
        private mutating func check(_ decided: [RunStateMachine.Action], of run: String) {
            require(!decided.isEmpty, "an empty forward")
            for action in decided {
                switch action {
                case .issue(_, let plan, let marker):
                    for task in plan where !tasks.contains(task) { tasks.append(task) }
                    if let marker { writes.append(.runMarker(RunMarkerFrame(run: run, marker: marker))) }
                case .repair(let plan, let chunks):
                    for task in plan where !tasks.contains(task) { tasks.append(task) }
                    writes.append(.runMarker(RunMarkerFrame(run: run, marker: .repairIssued(chunks: UInt32(chunks)))))
                case .close(let record):
                    require(closedRuns.insert(run).inserted, "run \(run) closed twice")
                    if record.status == .final { finals += 1 }
                    writes.append(.runMarker(RunMarkerFrame(run: run, marker: .closed)))
                case .publish, .compute:
                    break
                case .count:
                    require(false, "a count forwarded instead of counted")
                }
            }
        }

        /// A new owner replays from the last commit up to a barrier of its own, knowing the runs
        /// closed so far: it must hold the same open runs, each with the same accepted chunks.
        func checkHandOver(from machine: PartitionStateMachine, policy: RunStateMachine.Policy, at now: Timestamp) {
            var successor = PartitionStateMachineTarget.makeMachine(policy: policy)
            _ = successor.handle(.roundStarted(at: now))
            _ = successor.handle(.barrierWritten(token: 1, closedRuns: machine.closed.subtracting(machine.runs.keys), at: now))
            for record in log.dropFirst(Int(committed ?? 0)) { _ = successor.handle(.record(record, at: now)) }
            let barrier = PartitionStateMachine.Record(
                offset: Int64(log.count), timestamp: now, content: .frame(.partitionMarker(PartitionMarkerFrame(.barrier(token: 1)))))
            _ = successor.handle(.record(barrier, at: now))
            require(successor.isLive, "the successor did not catch up")
            require(
                successor.runs.mapValues { $0.machine.ledger.accepted } == machine.runs.mapValues { $0.machine.ledger.accepted },
                "the successor holds other runs or chunks than its predecessor")
        }
    }
}
#endif
