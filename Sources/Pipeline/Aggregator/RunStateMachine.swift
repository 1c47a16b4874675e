import LEEPCore
import WireFormat

/// The lifecycle of one run, owned in one place: events in, actions out, no I/O and no clock of
/// its own (every event carries its time).
///
/// ```
///            all chunks accepted          all results in            all results in
/// collecting ─────────────────▶ tasks: eep ─────────────▶ tasks: sfdaMix ─────────────▶ tasks: sfdaScore
///   │  ▲  │ silence: repair       │ (no θ: skipped)   │ (no features, or SFDA      │ all results in
///   │  └──┘ no manifests:         │                   │  undefined: skipped)       ▼
///   │       incomplete            │ silence: re-issue the step's missing tasks    closed (final)
///   │ mismatch, rejection,        ▼ mismatch, rejection, abandoned                   ▲
///   └────────────────────────▶ failed ───────────────────────────────────────────────┘ (failed)
/// ```
///
/// After pass 1 a run goes through the task steps it needs — LEEP's pass 2 when it sent softmax
/// outputs, SFDA's mixing and scoring passes when it sent features and SFDA is defined for
/// them — each issued as tasks over every chunk, with the tables they share, and recorded by a
/// marker (`pass2Issued`, `tasksIssued`). The final record carries what every step settled.
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
        /// A computation the machine asked for (`compute`) gave `value`.
        case computed(RunComputation.Kind, RunComputation.Value, at: Timestamp)
    }

    /// Where the run stands; each state carries what is valid in it.
    enum State {
        /// Pass 1: partials are merged until every chunk the manifests list is accepted.
        case collecting(Collecting)
        /// A task step after pass 1: tasks are out; their results are summed.
        case tasks(TaskPhase)
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

    /// A task step's tasks and timers, and what earlier steps settled.
    struct TaskPhase {
        /// What a step computes over every chunk.
        enum Step: Equatable {
            /// LEEP's pass 2 (EEP hits too when `accuracy`).
            case eep(accuracy: Bool)
            /// SFDA's pass 2: the rows mixed by the first fit, their statistics.
            case sfdaMix(first: SFDA.Fit)
            /// SFDA's pass 3: the second fit's own-class probabilities of the mixed rows.
            case sfdaScore(first: SFDA.Fit, second: SFDA.Fit)

            /// The pass its tasks run.
            var pass: TaskFrame.Pass {
                switch self {
                case .eep(let accuracy): accuracy ? .eepWithAccuracy : .eep
                case .sfdaMix: .sfdaMix
                case .sfdaScore: .sfdaScore
                }
            }

            /// The tables its tasks read, published on the conditionals topic.
            func tables(joint: JointAccumulator?) -> [SharedTable] {
                switch self {
                case .eep: [.conditional(ConditionalTable(joint: joint!))]
                case .sfdaMix(let first): [.sfdaFit(first)]
                case .sfdaScore(let first, let second): [.sfdaFit(first), .sfdaFit(second)]
                }
            }

            /// The marker that records the step's tasks.
            func marker(_ ids: [UInt64]) -> RunMarkerFrame.Marker {
                switch self {
                case .eep: .pass2Issued(taskIDs: ids)
                case .sfdaMix, .sfdaScore: .tasksIssued(pass: pass, taskIDs: ids)
                }
            }
        }

        let step: Step
        /// Which pass over the rows this is (pass 1 is the partials').
        let passNumber: Int
        /// The tasks whose results make the step's sums.
        let tasks: Set<UInt64>
        /// The tasks' chunks, for issuing missing ones again.
        let plan: [TaskPlan]
        /// LEEP's score, once its step is done.
        let leep: LEEPScore?
        /// When the tasks were issued (or last issued again).
        var issuedAt: Timestamp
        /// The last new result.
        var lastProgress: Timestamp
        /// How often the missing tasks were issued again; each time the next waits twice as long.
        var reissues = 0
    }

    /// A table the tasks of a step share, published in parts on the conditionals topic.
    enum SharedTable: Equatable {
        /// P(y|z), for LEEP's pass 2.
        case conditional(ConditionalTable)
        /// One of SFDA's fits.
        case sfdaFit(SFDA.Fit)
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
        /// Publish the tables, then the tasks naming where they landed, then — for a step's
        /// first issue — record `marker` on the runs topic. Issued again (`marker` nil), the
        /// tasks are those whose results have not come.
        case issue(tables: [SharedTable], tasks: [TaskPlan], marker: RunMarkerFrame.Marker?)
        /// Publish repair tasks for missing chunks and record `repairIssued`; `chunks` of them
        /// were never repaired before.
        case repair(tasks: [TaskPlan], chunks: Int)
        /// Publish a progress or incomplete record.
        case publish(ScoreRecord)
        /// Publish the final or failed record, then record the run closed.
        case close(ScoreRecord)
        /// Count what a live record did (history was counted when it happened).
        case count(AggregatorMetric)
        /// Run the computation off the loop, and report its value with `computed`.
        case compute(RunComputation)
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
        /// Chunks an SFDA mixing task covers: each result carries D² statistics, so fewer,
        /// larger tasks send fewer of them.
        var chunksPerStatisticsTask = 256
        /// Rows merged before a streaming record carries an estimate of LEEP (`LEEPEstimate`).
        var estimateAfterRows = LEEPEstimate.defaultMinimumRowsMerged
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
    /// LEEP's bracket, once pass 1 is settled (nil before, and for a run of features alone).
    private(set) var bracket: LEEPBracket?
    /// The values of the computations the run needed, by kind.
    private var computed: [RunComputation.Kind: RunComputation.Value] = [:]
    /// The computations asked for whose values have not come (live bookkeeping: an owner that
    /// replays the run computes what it needs as it goes, and asks for the rest once live).
    private var computing: Set<RunComputation.Kind> = []
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
            let counted = apply(frame, at: time)
            return isLive ? counted.map(Action.count) + decide(now: time) : []
        case .caughtUp(let now):
            isLive = true
            return decide(now: now)
        case .tick(let now, let workers):
            if let workers { self.workers = workers }
            return isLive ? decide(now: now) : []
        case .computed(let kind, let value, let now):
            // Only a value this machine asked for: one asked for by an earlier owner of the
            // partition, in this process, may come after this machine computed its own.
            guard computing.remove(kind) != nil else { return [] }
            computed[kind] = value
            return isLive ? decide(now: now) : []
        }
    }

    /// Folds `frame` into the ledger and the state; returns what it counts for the metrics.
    private mutating func apply(_ frame: Frame, at time: Timestamp) -> [AggregatorMetric] {
        if case .runMarker(let marker) = frame {
            _ = ledger.apply(frame)  // the ledger counts the chunks a repair covers
            apply(marker.marker, at: time)
            return []
        }
        switch state {
        case .closed, .failed: return []  // Nothing changes a failed or closed run but its close.
        case .collecting, .tasks: break
        }
        // Pass 1 is settled once complete, whether the run moved on or waits for a computation.
        if case .partial = frame, ledger.isPass1Complete { return [] }
        lastActivity = max(lastActivity, time)
        let change = ledger.apply(frame)
        var counted: [AggregatorMetric] = []
        switch (change, frame) {
        case (.progress, .partial): counted = [.partialAccepted]
        case (.duplicate, _): counted = [.duplicateDropped]
        default: break
        }
        switch (change, state) {
        case (.failure(let reason), _):
            state = .failed(reason: reason)
        case (.progress, .collecting(var collecting)):
            collecting.lastProgress = max(collecting.lastProgress, time)
            collecting.incompleteReported = false
            state = .collecting(collecting)
        case (.none, .collecting(var collecting)), (.duplicate, .collecting(var collecting)):
            collecting.incompleteReported = false
            state = .collecting(collecting)
        case (.progress, .tasks(var phase)):
            if case .taskResult(let result) = frame, phase.tasks.contains(result.taskID) {
                phase.lastProgress = max(phase.lastProgress, time)
                state = .tasks(phase)
            }
        default:
            break
        }
        return counted
    }

    /// A decision recorded on the runs topic: by this machine's owner (then already taken here)
    /// or by an earlier one (then taken now, as it was then).
    private mutating func apply(_ marker: RunMarkerFrame.Marker, at time: Timestamp) {
        switch (marker, state) {
        case (.closed, _):
            state = .closed
        case (.pass2Issued(let ids), _), (.tasksIssued(_, let ids), _):
            // The tasks are those the ledger gives now; an owner issued them from the same facts.
            // (An owner records a marker once the step before is complete, so one read before
            // that is no owner's decision: followed, it would score some of the rows as all.)
            guard let current = settledStep() else { break }
            // Replaying decides nothing, so what the step needs is computed here, on the
            // loop: once per run and take-over, for the runs already past it. A live machine
            // reading back its own marker asks for it off the loop instead (`decide`).
            var next = successor(of: current)
            while !isLive, case .compute(let computation) = next {
                computed[computation.kind] = computation()
                next = successor(of: current)
            }
            guard case .step(let step, let leep, let passNumber) = next, step.marker(ids) == marker else { break }
            let tasks = Set(ids)
            enter(TaskPhase(
                step: step, passNumber: passNumber, tasks: tasks, plan: plan(for: step).filter { tasks.contains($0.id) },
                leep: leep, issuedAt: time, lastProgress: time))
        case (.repairIssued, .collecting(var collecting)):
            collecting.lastRepair = max(collecting.lastRepair ?? time, time)
            state = .collecting(collecting)
        case (.repairIssued, _):
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
            if let settled = settledStep() {
                // Waiting for a computation: what comes next is known only once its value is.
                return computing.isEmpty ? advance(from: settled, now: now) : progress(now: now)
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
        case .tasks(var phase):
            if let settled = settledStep() {
                // Waiting for a computation: what comes next is known only once its value is.
                return computing.isEmpty ? advance(from: settled, now: now) : progress(now: now)
            }
            if let abandoned = abandonment(now: now) { return abandoned }
            var actions: [Action] = []
            if now - max(phase.issuedAt, phase.lastProgress) >= policy.repairAfter * (1 << min(phase.reissues, 6)) {
                // No result for a while: a task may have been lost or skipped; issue the missing
                // ones again. Backing off: a task that is merely slow (SFDA's on wide features
                // take longer than repairAfter under a backlog) would otherwise be issued, with
                // its shared tables, every interval, each copy adding to the backlog that made it
                // slow — a broker's memory then fills with copies of the same tables.
                phase.issuedAt = now
                phase.reissues += 1
                state = .tasks(phase)
                let missing = phase.plan.filter { ledger.results[$0.id] == nil }
                actions.append(.issue(tables: phase.step.tables(joint: ledger.joint), tasks: missing, marker: nil))
            }
            return actions + progress(now: now)
        }
    }

    // MARK: Task steps

    /// What the run has settled when the step under way (or pass 1) is complete: nil while it
    /// is not; `.passOne` once pass 1 is; the phase once all its tasks' results are in.
    private func settledStep() -> Settled? {
        switch state {
        case .collecting: ledger.isPass1Complete ? .passOne : nil
        case .tasks(let phase): ledger.hasResults(of: phase.tasks) ? .phase(phase) : nil
        case .failed, .closed: nil
        }
    }

    /// A complete stage of the run.
    private enum Settled {
        case passOne
        case phase(TaskPhase)
    }

    /// What follows a complete stage: the next step to issue (with LEEP's score, when settled,
    /// and its pass number), or the run's last record.
    private enum Successor {
        case step(TaskPhase.Step, leep: LEEPScore?, passNumber: Int)
        case close(ScoreRecord)
        /// Not known until this computation's value is.
        case compute(RunComputation)
    }

    /// The step after `settled`, a pure function of the ledger: an owner replaying the markers
    /// reaches the same steps as the one that issued them.
    private func successor(of settled: Settled) -> Successor {
        switch settled {
        case .passOne:
            if let joint = ledger.joint, joint.sourceClasses > 0 {
                return .step(.eep(accuracy: ledger.eepAccuracyRequested), leep: nil, passNumber: 2)
            }
            return startSFDA(leep: nil, passNumber: 2)
        case .phase(let phase):
            switch phase.step {
            case .eep(let accuracy):
                switch ledger.leepScore(tasks: phase.tasks, accuracy: accuracy)! {
                case .failure(let failure): return .close(failedRecord(reason: failure.reason))
                case .success(let leep): return startSFDA(leep: leep, passNumber: phase.passNumber + 1)
                }
            case .sfdaMix(let first):
                switch ledger.mixedStatistics(tasks: phase.tasks)! {
                case .failure(let failure): return .close(failedRecord(reason: failure.reason))
                case .success(let mixed):
                    let fit = RunComputation(kind: .sfdaSecondFit, input: .sfdaFit(mixed, shrinkage: first.shrinkage))
                    guard case .sfdaFit(let outcome)? = computed[fit.kind] else { return .compute(fit) }
                    switch outcome {
                    case .success(let second):
                        return .step(.sfdaScore(first: first, second: second), leep: phase.leep, passNumber: phase.passNumber + 1)
                    case .failure(let undefined):
                        return close(leep: phase.leep, sfda: .undefined("the fit to the mixed rows: \(undefined.reason)"))
                    }
                }
            case .sfdaScore(let first, _):
                switch ledger.sfdaScore(tasks: phase.tasks)! {
                case .failure(let failure): return .close(failedRecord(reason: failure.reason))
                case .success(let score):
                    return close(leep: phase.leep, sfda: .scored([SFDA.key: score, SFDA.shrinkageKey: first.shrinkage]))
                }
            }
        }
    }

    /// SFDA's first step, or the last record when the run has no features or SFDA is undefined.
    private func startSFDA(leep: LEEPScore?, passNumber: Int) -> Successor {
        guard let features = ledger.features else { return close(leep: leep, sfda: nil) }
        guard let within = features[WithinClassScatter.self] else {
            return close(leep: leep, sfda: .undefined("the partials did not all carry the \(StatisticKind.withinClassScatter)"))
        }
        let fit = RunComputation(kind: .sfdaFirstFit, input: .sfdaFit(within, shrinkage: nil))
        guard case .sfdaFit(let outcome)? = computed[fit.kind] else { return .compute(fit) }
        switch outcome {
        case .success(let first): return .step(.sfdaMix(first: first), leep: leep, passNumber: passNumber)
        case .failure(let undefined): return close(leep: leep, sfda: .undefined(undefined.reason))
        }
    }

    /// The final record, or a failed one when the feature statistics disagree with pass 1.
    private func close(leep: LEEPScore?, sfda: MetricOutcome?) -> Successor {
        var features: (report: FeatureMetricReport, width: Int)?
        switch ledger.checkedFeatures() {
        case .failure(let failure)?: return .close(failedRecord(reason: failure.reason))
        case .success(let statistics)?:
            let metrics = RunComputation(kind: .featureMetrics, input: .featureMetrics(statistics))
            guard case .featureMetrics(var report)? = computed[metrics.kind] else { return .compute(metrics) }
            if let sfda {
                report.record(SFDA.key, companions: [SFDA.shrinkageKey], title: SFDA.title, sfda)
            }
            features = (report, statistics.featureWidth)
        case nil: break
        }
        return .close(finalRecord(leep: leep, features: features))
    }

    /// Moves on from a complete stage: issues the next step, or closes the run.
    private mutating func advance(from settled: Settled, now: Timestamp) -> [Action] {
        switch successor(of: settled) {
        case .close(let record):
            state = .closed
            return [.close(record)]
        case .compute(let computation):
            // Asked for once; the run waits for its value (ticks and late records change nothing
            // it depends on: the stage it completes is settled).
            guard computing.insert(computation.kind).inserted else { return progress(now: now) }
            return [.compute(computation)] + progress(now: now)
        case .step(let step, let leep, let passNumber):
            let plan = plan(for: step)
            enter(TaskPhase(
                step: step, passNumber: passNumber, tasks: Set(plan.map(\.id)), plan: plan, leep: leep, issuedAt: now,
                lastProgress: now))
            let issue = Action.issue(tables: step.tables(joint: ledger.joint), tasks: plan, marker: step.marker(plan.map(\.id)))
            // Pass 1 is merged: the bracket is known, before pass 2 reads a row.
            let bracketed = passNumber == 2 ? bracketedRecord().map { [Action.publish($0)] } ?? [] : []
            return [issue] + bracketed + progress(now: now)
        }
    }

    /// Starts a task step (pass 1 is settled from then on: the joint, and so the bracket, is
    /// the run's).
    private mutating func enter(_ phase: TaskPhase) {
        state = .tasks(phase)
        if bracket == nil { bracket = ledger.joint.flatMap(LEEPBracket.init(joint:)) }
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
        if case .tasks(let phase) = state {
            reason += "pass \(phase.passNumber) has \(ledger.resultCount(of: phase.tasks)) of \(phase.tasks.count) task results"
        } else {
            reason += ledger.missingSummary
        }
        state = .closed
        return [.close(failedRecord(reason: reason))]
    }

    /// Every chunk's task of `step`, in the deterministic order that gives each task its id.
    private func plan(for step: TaskPhase.Step) -> [TaskPlan] {
        plan(of: ledger.expectedChunks, pass: step.pass)
    }

    /// Cuts chunks into tasks: by partition, in offset order, `chunksPerTask` at a time
    /// (`chunksPerStatisticsTask` for SFDA's mixing), so a worker reads each task's chunks with
    /// one forward scan. Deterministic, so task ids are.
    private func plan(of chunks: [LocatedChunk], pass: TaskFrame.Pass) -> [TaskPlan] {
        let byPartition = Dictionary(grouping: chunks, by: \.location.partition)
        let size = pass == .sfdaMix ? policy.chunksPerStatisticsTask : policy.chunksPerTask
        return byPartition.keys.sorted().flatMap { partition in
            let sorted = byPartition[partition]!.sorted { $0.location.offset < $1.location.offset }
            return stride(from: 0, to: sorted.count, by: size).map { start in
                let chunks = Array(sorted[start..<min(sorted.count, start + size)])
                return TaskPlan(pass: pass, chunks: chunks, id: TaskFrame.id(run: run, pass: pass, chunks: chunks.map(\.id)))
            }
        }
    }

    // MARK: Score records

    /// A progress record when what it says changed and the last is `progressInterval` old.
    private mutating func progress(now: Timestamp) -> [Action] {
        // Decided on the cheap summary first: the record's bracket (Y·Z logarithms) and estimate
        // (every sampled row against the joint) would otherwise be computed for every record the
        // run receives — seconds of the loop per run on ImageNet-sized joints — and thrown away.
        guard ledger.identity != nil, case let summary = progressSummary, summary != lastProgressSummary,
              lastProgressAt.map({ now - $0 >= policy.progressInterval }) ?? true,
              let record = progressRecord()
        else { return [] }
        lastProgressSummary = summary
        lastProgressAt = now
        return [.publish(record)]
    }

    /// What a progress record says about how far the run has got: a new record is due only
    /// when it changes.
    private var progressSummary: [Int] {
        if case .tasks(let phase) = state {
            return [phase.passNumber, ledger.accepted.count, ledger.expectedChunkCount ?? -1, ledger.resultCount(of: phase.tasks)]
        }
        return [1, ledger.accepted.count, ledger.expectedChunkCount ?? -1, -1]
    }

    /// Where the run stands, as a progress record — `streaming` in pass 1 once rows of softmax
    /// outputs are merged — (nil before anything names the run).
    func progressRecord() -> ScoreRecord? {
        guard let identity = ledger.identity else { return nil }
        var record = ScoreRecord(model: identity.model, dataset: identity.dataset, run: run, status: .progress)
        record.sourceClasses = ledger.sourceClasses
        record.chunksAccepted = ledger.accepted.count
        record.chunksExpected = ledger.expectedChunkCount
        if case .tasks(let phase) = state {
            record.pass = phase.passNumber
            record.tasksDone = ledger.resultCount(of: phase.tasks)
            record.tasksExpected = phase.tasks.count
            record.targetClasses = ledger.targetClasses
            record.leepLower = bracket?.lower
            record.leepUpper = bracket?.upper
        } else {
            record.pass = 1
            if let joint = ledger.joint, joint.sampleCount > 0 {
                // Rows are in: the bracket of the joint so far and the estimate from its sample.
                record.status = .streaming
                record.rowsSeen = joint.sampleCount
                let bracket = LEEPBracket(joint: joint)
                record.leepLower = bracket?.lower
                record.leepUpper = bracket?.upper
                if let estimate = ledger.leepEstimate(minimumRowsMerged: policy.estimateAfterRows) {
                    record.leepEstimate = estimate.value
                    record.leepEstimateLow = estimate.low
                    record.leepEstimateHigh = estimate.high
                    record.sampledRows = estimate.sampleSize
                }
            }
        }
        return record
    }

    /// The record of a run whose pass 1 is merged: its bracket, n, Y and Z.
    private func bracketedRecord() -> ScoreRecord? {
        guard let bracket, let joint = ledger.joint else { return nil }
        var record = baseRecord(status: .bracketed)
        record.leepLower = bracket.lower
        record.leepUpper = bracket.upper
        record.n = joint.sampleCount
        record.sourceClasses = joint.sourceClasses
        record.targetClasses = joint.targetClasses
        return record
    }

    private func finalRecord(leep score: LEEPScore?, features: (report: FeatureMetricReport, width: Int)?) -> ScoreRecord {
        var record = baseRecord(status: .final)
        if let (report, width) = features {
            record.features = report
            record.featureWidth = width
        }
        record.leep = score?.leep
        record.leepLower = score?.leepLower
        record.leepUpper = score?.leepUpper
        record.nce = score?.nce
        record.eepAccuracy = score?.eepAccuracy
        record.n = ledger.sampleCount
        record.sourceClasses = score?.sourceClasses ?? ledger.sourceClasses
        record.targetClasses = score?.targetClasses ?? ledger.targetClasses
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
