import LEEPCore
import WireFormat

/// The lifecycle of one run, owned in one place: events in, actions out, no I/O and no clock of
/// its own (every event carries its time).
///
/// ```
///            all chunks accepted                  all results in
/// collecting ───────────────────▶ pass 2 ───────────────────────▶ closed (final)
///   │  ▲  │ silence: repair         │ silence: re-issue tasks          ▲
///   │  └──┘ no manifests: incomplete│                                  │
///   │ mismatch, rejection,          │ mismatch, rejection,             │
///   │ abandoned                     ▼ abandoned                        │
///   └──────────────────────────▶ failed ─────────────────────────────┘ (failed)
/// ```
///
/// While its partition is replayed (before `caughtUp`) the machine only folds records: the
/// decisions they record (markers) move it on, and it returns no action, because whatever is due
/// may already be recorded further on. Once caught up it decides, and records its decisions on
/// the runs topic through the actions it returns, so a later owner replaying the topic reaches
/// the same state. Timers (repair, re-issue, incomplete, abandonment) run on record times while
/// replaying, so a take-over neither restarts nor skips them.
struct RunStateMachine {
    /// Something that happened to the run.
    enum Event {
        /// A record of the run on the runs topic, applied in partition order, at its time.
        case record(Frame, at: Timestamp)
        /// Every record of the run's partition written before its owner's assignment has been
        /// applied: from now on the machine decides.
        case caughtUp(at: Timestamp)
        /// Time passed; `workers` says how far the workers have got, when known.
        case tick(Timestamp, workers: WorkerProgress? = nil)
    }

    /// Where the run stands; each state carries what is valid in it.
    enum State {
        /// Pass 1: partials are merged until every chunk the manifests list is accepted.
        case collecting(Collecting)
        /// Pass 2: tasks are out; their results are summed.
        case pass2(Pass2)
        /// The run cannot be scored; the failure is published next.
        case failed(reason: String)
        /// Its final or failed score is published; later records change nothing.
        case closed
    }

    /// Pass 1's timers.
    struct Collecting {
        /// The last accepted partial (or the first record).
        var lastProgress: Timestamp
        /// The last repair issued, if any.
        var lastRepair: Timestamp?
        /// The chunks this machine has issued repairs for, so that issuing one again is not
        /// counted again (`chunksRepaired` counts chunks, not tries).
        var repaired: Set<ChunkID> = []
        /// `incomplete` was published since the last activity.
        var incompleteReported = false
    }

    /// Pass 2's tasks and timers.
    struct Pass2 {
        /// The tasks whose results make the score.
        let tasks: Set<UInt64>
        /// The tasks' chunks, for issuing missing ones again.
        let plan: [TaskPlan]
        /// Whether the tasks count EEP hits (fixed when pass 2 starts).
        let accuracy: Bool
        /// When the tasks were issued (or last issued again).
        var issuedAt: Timestamp
        /// The last new result.
        var lastProgress: Timestamp
    }

    /// One task to issue: its pass and chunks (the conditional's location is added when it is
    /// published). Its id depends on these only, so issuing it twice is harmless.
    struct TaskPlan: Equatable {
        let pass: TaskFrame.Pass
        let chunks: [LocatedChunk]
        let id: UInt64
    }

    /// What the aggregator must do for the run.
    enum Action {
        /// Publish the conditional P(y|z), then the tasks naming where it landed, then record
        /// `pass2Issued` on the runs topic.
        case startPass2(conditional: ConditionalTable, tasks: [TaskPlan])
        /// Publish the conditional again and these tasks, whose results have not come.
        case reissuePass2(conditional: ConditionalTable, tasks: [TaskPlan])
        /// Publish repair tasks for missing chunks and record `repairIssued`; `chunks` of them
        /// were never repaired before.
        case repair(tasks: [TaskPlan], chunks: Int)
        /// Publish a progress or incomplete record.
        case publish(ScoreRecord)
        /// Publish the final or failed record, then record the run closed.
        case close(ScoreRecord)
    }

    /// When to act.
    struct Policy {
        /// Silence before the chunks the workers have passed without their sums being accepted
        /// are repaired (and before pass-2 tasks are issued again).
        var repairAfter: Duration = .seconds(10)
        /// Silence before every missing chunk is repaired, passed by the workers or not (a
        /// worker stuck on a partition, or their offsets unknown): repairs of chunks still
        /// waiting in a backlog would only add to it.
        var repairAnywayAfter: Duration = .seconds(60)
        var incompleteAfter: Duration = .seconds(60)
        var abandonAfter: Duration = .seconds(86_400)
        var progressInterval: Duration = .seconds(1)
        var chunksPerTask = 32
    }

    let run: String
    let policy: Policy
    private(set) var ledger: RunLedger
    private(set) var state: State
    /// True once the partition is caught up: the machine decides from then on.
    private(set) var isLive = false
    /// The last manifest, partial, result or rejection (the aggregator's own markers are not
    /// activity: a run that only gets repaired is not alive).
    private(set) var lastActivity: Timestamp
    /// How far the workers had got at the last tick.
    private var workers: WorkerProgress?
    /// The last progress record published, and when (live bookkeeping; not replayed).
    private var lastProgressSummary: [Int]?
    private var lastProgressAt: Timestamp?

    /// A run first seen at `firstSeen`; `isLive` when its partition is already caught up.
    init(run: String, policy: Policy, firstSeen: Timestamp, isLive: Bool = false) {
        self.run = run
        self.isLive = isLive
        self.policy = policy
        ledger = RunLedger(run: run)
        state = .collecting(Collecting(lastProgress: firstSeen))
        lastActivity = firstSeen
    }

    var isClosed: Bool {
        if case .closed = state { return true }
        return false
    }

    // MARK: Events

    /// Applies `event`; returns the actions now due (none while replaying).
    mutating func handle(_ event: Event) -> [Action] {
        switch event {
        case .record(let frame, let time):
            apply(frame, at: time)
            return isLive ? decide(now: time) : []
        case .caughtUp(let now):
            isLive = true
            return decide(now: now)
        case .tick(let now, let workers):
            if let workers { self.workers = workers }
            return isLive ? decide(now: now) : []
        }
    }

    private mutating func apply(_ frame: Frame, at time: Timestamp) {
        if case .runMarker(let marker) = frame {
            return apply(marker.marker, at: time)
        }
        switch state {
        case .closed, .failed: return  // Nothing changes a failed or closed run but its close.
        case .collecting, .pass2: break
        }
        if case .partial = frame, case .pass2 = state { return }  // Pass 1 is settled.
        lastActivity = max(lastActivity, time)
        let change = ledger.apply(frame)
        switch (change, state) {
        case (.failure(let reason), _):
            state = .failed(reason: reason)
        case (.progress, .collecting(var collecting)):
            collecting.lastProgress = max(collecting.lastProgress, time)
            collecting.incompleteReported = false
            state = .collecting(collecting)
        case (.none, .collecting(var collecting)):
            collecting.incompleteReported = false
            state = .collecting(collecting)
        case (.progress, .pass2(var pass2)):
            if case .taskResult(let result) = frame, pass2.tasks.contains(result.taskID) {
                pass2.lastProgress = max(pass2.lastProgress, time)
                state = .pass2(pass2)
            }
        default:
            break
        }
    }

    /// A decision recorded on the runs topic: by this machine's owner (then already taken here)
    /// or by an earlier one (then taken now, as it was then).
    private mutating func apply(_ marker: RunMarkerFrame.Marker, at time: Timestamp) {
        switch (marker, state) {
        case (.closed, _):
            state = .closed
        case (.pass2Issued(let ids), .collecting) where ledger.isPass1Complete:
            // The tasks are those the ledger gives now; an owner issued them from the same facts.
            // (An owner records the marker after pass 1 is complete, so one read before that is
            // no owner's decision: followed, it would score some of the rows as all of them.)
            let tasks = Set(ids)
            state = .pass2(Pass2(
                tasks: tasks, plan: pass2Plan().filter { tasks.contains($0.id) }, accuracy: ledger.eepAccuracyRequested,
                issuedAt: time, lastProgress: time))
        case (.repairIssued(let chunks), .collecting(var collecting)):
            ledger.chunksRepaired += Int(chunks)
            collecting.lastRepair = max(collecting.lastRepair ?? time, time)
            state = .collecting(collecting)
        case (.repairIssued(let chunks), _):
            ledger.chunksRepaired += Int(chunks)
        case (.pass2Issued, _):
            break
        }
    }

    // MARK: Decisions

    private mutating func decide(now: Timestamp) -> [Action] {
        switch state {
        case .closed:
            return []
        case .failed(let reason):
            state = .closed
            return [.close(failedRecord(reason: reason))]
        case .collecting(var collecting):
            if ledger.isPass1Complete, let joint = ledger.joint {
                let plan = pass2Plan()
                state = .pass2(Pass2(
                    tasks: Set(plan.map(\.id)), plan: plan, accuracy: ledger.eepAccuracyRequested, issuedAt: now,
                    lastProgress: now))
                return [.startPass2(conditional: ConditionalTable(joint: joint), tasks: plan)] + progress(now: now)
            }
            if ledger.expectedChunkCount == 0 {
                state = .closed
                return [.close(failedRecord(reason: "the manifests list no chunks: there is nothing to score"))]
            }
            if let abandoned = abandonment(now: now) { return abandoned }
            var actions: [Action] = []
            let silence = now - collecting.lastProgress
            if ledger.manifestsComplete, silence >= policy.repairAfter,
               collecting.lastRepair.map({ now - $0 >= policy.repairAfter }) ?? true,
               case let missing = repairable(silence: silence), !missing.isEmpty {
                collecting.lastRepair = now
                let first = missing.count { !collecting.repaired.contains($0.id) }
                collecting.repaired.formUnion(missing.map(\.id))
                actions.append(.repair(tasks: plan(of: missing, pass: .repair), chunks: first))
            } else if !ledger.manifestsComplete, !collecting.incompleteReported, now - lastActivity >= policy.incompleteAfter {
                // Not a failure: the missing shards may still arrive, and the run then goes on.
                collecting.incompleteReported = true
                var record = baseRecord(status: .incomplete)
                record.reason = "no record for \(policy.incompleteAfter.wholeSeconds) s; " + ledger.missingSummary
                record.chunksAccepted = ledger.accepted.count
                actions.append(.publish(record))
            }
            state = .collecting(collecting)
            return actions + progress(now: now)
        case .pass2(var pass2):
            if let outcome = ledger.finalScore(tasks: pass2.tasks, accuracy: pass2.accuracy) {
                state = .closed
                switch outcome {
                case .success(let score): return [.close(finalRecord(score))]
                case .failure(let failure): return [.close(failedRecord(reason: failure.reason))]
                }
            }
            if let abandoned = abandonment(now: now) { return abandoned }
            var actions: [Action] = []
            if now - max(pass2.issuedAt, pass2.lastProgress) >= policy.repairAfter, let joint = ledger.joint {
                // No result for a while: a task may have been lost or skipped; issue the missing ones again.
                pass2.issuedAt = now
                state = .pass2(pass2)
                let missing = pass2.plan.filter { ledger.results[$0.id] == nil }
                actions.append(.reissuePass2(conditional: ConditionalTable(joint: joint), tasks: missing))
            }
            return actions + progress(now: now)
        }
    }

    /// The missing chunks to repair after `silence`: those the workers have passed (their
    /// committed offset is beyond the chunk, so its sums were delivered and then dropped or
    /// lost), or every one once the silence reaches `repairAnywayAfter` or when the workers'
    /// progress is unknown. A chunk still waiting in a backlog gets its sums in turn; repairing
    /// it would only add work where work is already late.
    private func repairable(silence: Duration) -> [LocatedChunk] {
        let missing = ledger.missingChunks
        guard let workers, silence < policy.repairAnywayAfter else { return missing }
        return missing.filter { workers.havePassed($0.location) }
    }

    /// Closes a run that has had no activity for `abandonAfter`, so that it does not stay open —
    /// and keep the runs topic's history pinned — forever.
    private mutating func abandonment(now: Timestamp) -> [Action]? {
        guard now - lastActivity >= policy.abandonAfter else { return nil }
        var reason = "abandoned: no record for \(policy.abandonAfter.wholeSeconds) s; "
        if case .pass2(let pass2) = state {
            reason += "pass 2 has \(ledger.resultCount(of: pass2.tasks)) of \(pass2.tasks.count) task results"
        } else {
            reason += ledger.missingSummary
        }
        state = .closed
        return [.close(failedRecord(reason: reason))]
    }

    /// Every chunk's pass-2 task, in the deterministic order that gives each task its id.
    private func pass2Plan() -> [TaskPlan] {
        plan(of: ledger.expectedChunks, pass: ledger.eepAccuracyRequested ? .eepWithAccuracy : .eep)
    }

    /// Cuts chunks into tasks: by partition, in offset order, `chunksPerTask` at a time, so a
    /// worker reads each task's chunks with one forward scan. Deterministic, so task ids are.
    private func plan(of chunks: [LocatedChunk], pass: TaskFrame.Pass) -> [TaskPlan] {
        let byPartition = Dictionary(grouping: chunks, by: \.location.partition)
        return byPartition.keys.sorted().flatMap { partition in
            let sorted = byPartition[partition]!.sorted { $0.location.offset < $1.location.offset }
            return stride(from: 0, to: sorted.count, by: policy.chunksPerTask).map { start in
                let chunks = Array(sorted[start..<min(sorted.count, start + policy.chunksPerTask)])
                return TaskPlan(pass: pass, chunks: chunks, id: TaskFrame.id(run: run, pass: pass, chunks: chunks.map(\.id)))
            }
        }
    }

    // MARK: Score records

    /// A progress record when what it says changed and the last is `progressInterval` old.
    private mutating func progress(now: Timestamp) -> [Action] {
        guard let record = progressRecord() else { return [] }
        let summary = [record.pass ?? 0, record.chunksAccepted ?? 0, record.chunksExpected ?? -1, record.tasksDone ?? -1]
        guard summary != lastProgressSummary, lastProgressAt.map({ now - $0 >= policy.progressInterval }) ?? true else {
            return []
        }
        lastProgressSummary = summary
        lastProgressAt = now
        return [.publish(record)]
    }

    /// Where the run stands, as a progress record (nil before anything names the run).
    func progressRecord() -> ScoreRecord? {
        guard let identity = ledger.identity else { return nil }
        var record = ScoreRecord(model: identity.model, dataset: identity.dataset, run: run, status: .progress)
        record.sourceClasses = ledger.sourceClasses
        record.chunksAccepted = ledger.accepted.count
        record.chunksExpected = ledger.expectedChunkCount
        if case .pass2(let pass2) = state {
            record.pass = 2
            record.tasksDone = ledger.resultCount(of: pass2.tasks)
            record.tasksExpected = pass2.tasks.count
            record.targetClasses = ledger.targetClasses
        } else {
            record.pass = 1
        }
        return record
    }

    private func finalRecord(_ run: RunScore) -> ScoreRecord {
        let score = run.leep
        var record = baseRecord(status: .final)
        if let (features, width) = run.features {
            record.features = features
            record.featureWidth = width
        }
        record.leep = score.leep
        record.nce = score.nce
        record.eepAccuracy = score.eepAccuracy
        record.n = score.sampleCount
        record.sourceClasses = score.sourceClasses
        record.targetClasses = score.targetClasses
        return record
    }

    private func failedRecord(reason: String) -> ScoreRecord {
        var record = baseRecord(status: .failed)
        record.reason = reason
        record.sourceClasses = ledger.sourceClasses
        return record
    }

    private func baseRecord(status: ScoreRecord.Status) -> ScoreRecord {
        let identity = ledger.identity ?? RunIdentity(id: run, model: "", dataset: "")
        var record = ScoreRecord(model: identity.model, dataset: identity.dataset, run: run, status: status)
        record.partialsDropped = ledger.duplicatesDropped
        record.chunksRepaired = ledger.chunksRepaired
        return record
    }
}

/// How far the workers have got through the chunks: their group's committed offset for each
/// partition of the chunks topic. A worker commits only after the sums of every chunk before
/// that offset are delivered.
struct WorkerProgress: Equatable {
    /// The offset the workers resume from, per partition (absent: nothing committed yet).
    var committed: [Int32: Int64]

    /// True when the workers have delivered the sums of the chunk at `location`.
    func havePassed(_ location: RecordLocation) -> Bool {
        committed[location.partition].map { location.offset < $0 } ?? false
    }
}

extension Duration {
    /// Whole seconds, for messages.
    var wholeSeconds: Int64 { components.seconds }
}
