import Foundation
#if canImport(Glibc)
import CMalloc
#endif
import Kafka
import LEEPCore
import Logging
import Synchronization
import WireFormat

/// `leep aggregate`: a member of the aggregators' consumer group. It owns the runs whose
/// records land in its partitions of the runs topic and drives each through its
/// `RunStateMachine`: a loop that feeds events (records, "caught up", ticks) and carries out the
/// actions they return, all of a round's in one batch.
///
/// Its state is bounded by the open runs: a closed run leaves only its id, and the group's
/// committed offset of each partition is the first record of its oldest open run, so a new owner
/// replays no more than the open runs need. The ids of closed runs live on the compacted closed
/// topic, which a new owner reads first, so late records of long-closed runs change nothing.
///
/// Every decision depends only on the run's records, and each is recorded on the runs topic, so
/// an aggregator that takes over — after a crash, a freeze or a rebalance — decides the same;
/// anything published twice is harmless (tasks count once per id, scores are keyed by pair).
public final class Aggregator: Sendable {
    /// Tuning knobs.
    public struct Options: Sendable {
        /// Issue repair tasks for chunks the workers have passed that are still missing after
        /// this long without progress; issue pass-2 tasks again after this long without a result.
        public var repairAfter: Duration = .seconds(10)
        /// Repair every missing chunk, passed by the workers or not, after this long without
        /// progress.
        public var repairAnywayAfter: Duration = .seconds(60)
        /// The workers' consumer group, whose committed offsets say which chunks they have
        /// passed (nil: the topic prefix + "workers", as `leep worker` defaults to).
        public var workersGroup: String?
        /// Chunks per task.
        public var chunksPerTask = 32
        /// The broker's message limit: conditionals are split to stay under it.
        public var maxMessageBytes = 1_000_000
        /// Minimum time between two progress records of one run.
        public var progressInterval: Duration = .seconds(1)
        /// Publish `incomplete` for a run whose manifests are not all in and that has had no
        /// record for this long.
        public var incompleteAfter: Duration = .seconds(60)
        /// Close a run as failed ("abandoned") after this long without a record, so a run that
        /// never finishes does not stay open, and pin the runs topic's history, forever. Keep it
        /// shorter than the retention of the runs and chunks topics.
        public var abandonAfter: Duration = .seconds(86_400)
        /// Records handled per round at most before the round's actions are carried out.
        public var recordsPerRound = 2_000

        /// Defaults.
        public init() {}

        var policy: RunStateMachine.Policy {
            RunStateMachine.Policy(
                repairAfter: repairAfter, repairAnywayAfter: max(repairAnywayAfter, repairAfter), incompleteAfter: incompleteAfter, abandonAfter: abandonAfter,
                progressInterval: progressInterval, chunksPerTask: chunksPerTask)
        }
    }

    private let core: AggregatorCore
    private let consumer: KafkaConsumer
    /// What `/health` reports; the aggregator marks its rounds and its problems there.
    private let health: RoleHealth

    /// Joins `group` and subscribes to the runs topic.
    public init(
        configuration: KafkaConfiguration, group: String, topics: Topics, options: Options = Options(),
        clock: any WallClock = SystemWallClock(), health: RoleHealth, logger: Logger
    ) throws(KafkaError) {
        let core = try AggregatorCore(
            configuration: configuration, topics: topics, options: options, clock: clock,
            delivery: PersistentDelivery(health: health, logger: logger), logger: logger)
        self.health = health
        self.core = core
        consumer = try KafkaConsumer(
            configuration: configuration.merging(["group.id": group]), topics: [topics.runs]
        ) { rebalance, _ in
            // Offsets are committed by the loop at the end of every round, after the round's
            // actions are delivered; a revocation only drops the partitions' state.
            switch rebalance {
            case .assigned(let partitions): core.assigned(partitions.map(\.partition))
            case .revoked(let partitions): core.revoked(partitions.map(\.partition))
            }
        }
    }

    /// Processes records until `shutdown` is triggered. Throws when a Kafka client failed
    /// fatally: the aggregator is then to be replaced (`RoleSupervisor`), and its successor
    /// takes over from the committed offsets like any new owner.
    public func run(until shutdown: ShutdownSignal) throws {
        var upkeep = LoopUpkeep(health: health, topicPrefix: core.topics.prefix, lagFrom: .committed, logger: core.logger)
        while !shutdown.isTriggered {
            upkeep.round(consumer)
            try core.round(consumer)
        }
        consumer.close()
        core.logger.info("aggregator stopped")
    }
}

/// The aggregator's partitions, their runs and the loop's rounds. Shared by the poll loop and
/// the rebalance handler, both on the polling thread: the mutex makes that safe to state, it is
/// never contended.
final class AggregatorCore: Sendable {
    /// One assigned partition of the runs topic.
    struct OwnedPartition {
        /// How far the new owner is.
        enum Phase {
            /// The closed topic's partition is to be read and the barriers written.
            case assigned
            /// Records before `barrier` are history: folded, not acted on.
            case replaying(barrier: UInt64, sentAt: Timestamp)
            /// Caught up: every machine decides.
            case live
        }

        var phase: Phase = .assigned
        /// Records fetched before the closed runs are known, applied once they are.
        var early: [KafkaMessage] = []
        /// Ids of the runs closed in this partition: all a closed run leaves behind.
        var closed: Set<String> = []
        /// Open runs and the offset of the first record of each.
        var runs: [String: OpenRun] = [:]
        /// The offset after the last record read.
        var nextOffset: Int64?
        /// The offset last committed.
        var committed: Int64?
        /// Malformed records met while replaying, by offset: dead-lettered once caught up unless
        /// a marker says an earlier owner did it.
        var deferredDeadLetters: [Int64: OutgoingRecord] = [:]

        var isLive: Bool {
            if case .live = phase { return true }
            return false
        }

        /// Where a new owner must start: the first record of the oldest open run, else the
        /// offset after the last record read.
        var resumeOffset: Int64? {
            runs.values.map(\.firstOffset).min() ?? nextOffset
        }
    }

    /// An open run's machine and where its records start.
    struct OpenRun {
        var machine: RunStateMachine
        let firstOffset: Int64
    }

    struct State {
        var partitions: [Int32: OwnedPartition] = [:]
        /// Partitions of the tasks topic, once looked up.
        var taskPartitions: Int32?
        /// When freed memory was last given back.
        var lastTrim: ContinuousClock.Instant?
        /// The workers' committed offsets on the chunks topic (nil when the last read failed),
        /// and when they were last asked for.
        var workers: (progress: WorkerProgress?, askedAt: ContinuousClock.Instant)?
    }

    let producer: KafkaProducer
    /// The workers' committed offsets (see `RunStateMachine.repairable`).
    let workerOffsets: KafkaGroupOffsets
    let configuration: KafkaConfiguration
    let topics: Topics
    let options: Aggregator.Options
    let clock: any WallClock
    let metrics = AggregatorMetrics()
    let delivery: PersistentDelivery
    let logger: Logger
    private let state = Mutex(State())

    init(
        configuration: KafkaConfiguration, topics: Topics, options: Aggregator.Options, clock: any WallClock,
        delivery: PersistentDelivery, logger: Logger
    ) throws(KafkaError) {
        self.delivery = delivery
        producer = try KafkaProducer(configuration: configuration)
        workerOffsets = try KafkaGroupOffsets(
            configuration: configuration, group: options.workersGroup ?? topics.prefix + "workers")
        self.configuration = configuration
        self.topics = topics
        self.options = options
        self.clock = clock
        self.logger = logger
        // A run's closed record goes to the closed topic's partition numbered like its runs
        // partition: the two topics must have as many partitions.
        let (runs, closed) = (try producer.partitionCount(of: topics.runs), try producer.partitionCount(of: topics.closed))
        guard runs == closed else {
            throw KafkaError(message: "\(topics.closed) has \(closed) partitions but \(topics.runs) has \(runs); "
                + "they must match (leep topics create makes them so)")
        }
    }

    func assigned(_ partitions: [Int32]) {
        logger.info("runs partitions assigned", metadata: ["partitions": "\(partitions.sorted())"])
        state.withLock { state in
            for partition in partitions { state.partitions[partition] = OwnedPartition() }
        }
    }

    func revoked(_ partitions: [Int32]) {
        logger.info("runs partitions revoked", metadata: ["partitions": "\(partitions.sorted())"])
        state.withLock { state in
            for partition in partitions { state.partitions[partition] = nil }
        }
    }

    // MARK: The round

    /// One round: take over newly assigned partitions, handle what has arrived, let time pass
    /// for every run, carry out every action due as one batch, commit.
    func round(_ consumer: KafkaConsumer) throws {
        var outbox = Outbox()
        for message in try takeOver() { handle(message, into: &outbox) }
        let started = ContinuousClock.now
        var handled = 0
        var message = try consumer.poll(timeoutMilliseconds: 100)
        while let current = message {
            handle(current, into: &outbox)
            handled += 1
            guard handled < options.recordsPerRound, ContinuousClock.now - started < .milliseconds(100) else { break }
            message = try consumer.poll(timeoutMilliseconds: 0)
        }
        tick(into: &outbox)
        try deliver(outbox)
        commit(consumer)
        if !outbox.closed.isEmpty { releaseFreedMemory() }
    }

    /// Gives the pages of closed runs back to the system. A run's sums are megabytes (Y×Z
    /// float64); freed between live ones, they stay in the allocator's heap, and the process
    /// would keep the memory of its busiest moment for good.
    private func releaseFreedMemory() {
        #if canImport(Glibc)
        let now = ContinuousClock.now
        guard state.withLock({ state in
            guard state.lastTrim.map({ now - $0 >= .seconds(1) }) ?? true else { return false }
            state.lastTrim = now
            return true
        }) else { return }
        malloc_trim(0)
        #endif
    }

    /// Reads the closed runs of newly assigned partitions and writes a barrier to each (again,
    /// if a barrier has not come back within the repair interval: it may have been lost).
    /// Returns the records fetched from them before their closed runs were known.
    private func takeOver() throws -> [KafkaMessage] {
        let now = clock.now()
        let due = state.withLock { state in
            state.partitions.filter { _, owned in
                switch owned.phase {
                case .assigned: true
                case .replaying(_, let sentAt): now - sentAt >= options.repairAfter
                case .live: false
                }
            }.keys.sorted()
        }
        guard !due.isEmpty else { return [] }
        let tokens = Dictionary(uniqueKeysWithValues: due.map { ($0, UInt64.random(in: 1...UInt64.max)) })
        var barriers: [OutgoingRecord] = []
        for (partition, token) in tokens {
            let barrier = PartitionMarkerFrame(.barrier(token: token)).encoded()
            barriers.append(OutgoingRecord(topic: topics.runs, key: nil, value: barrier, partition: partition))
            // One key for every barrier, so compaction keeps only the latest of each partition.
            barriers.append(OutgoingRecord(topic: topics.closed, key: Array("barrier".utf8), value: barrier, partition: partition))
        }
        try producer.send(barriers)
        let closed = try readClosedRuns(of: tokens)
        let early = state.withLock { state in
            var early: [KafkaMessage] = []
            for (partition, token) in tokens {
                guard var owned = state.partitions[partition] else { continue }  // Revoked meanwhile.
                if case .assigned = owned.phase { owned.closed = closed[partition] ?? [] }
                owned.phase = .replaying(barrier: token, sentAt: now)
                early += owned.early
                owned.early = []
                state.partitions[partition] = owned
            }
            return early
        }
        logger.info("replaying runs partitions up to their barriers", metadata: [
            "partitions": "\(due)", "closed_runs": "\(closed.values.reduce(0) { $0 + $1.count })",
        ])
        return early
    }

    /// The ids of the closed runs of each partition, read from the closed topic up to this
    /// owner's barrier.
    private func readClosedRuns(of tokens: [Int32: UInt64]) throws -> [Int32: Set<String>] {
        let reader = try KafkaTopicReader(configuration: configuration, topic: topics.closed, partitions: Array(tokens.keys))
        var closed: [Int32: Set<String>] = [:]
        var waiting = Set(tokens.keys)
        let deadline = ContinuousClock.now + .seconds(60)
        while !waiting.isEmpty {
            guard ContinuousClock.now < deadline else {
                throw KafkaError(message: "reading \(topics.closed): no barrier back from partitions \(waiting.sorted()) within 60 s")
            }
            guard let message = reader.poll(timeoutMilliseconds: 200) else { continue }
            switch try? Frame.decode(message.value) {
            case .partitionMarker(let marker):
                if case .barrier(let token) = marker.marker, tokens[message.partition] == token {
                    waiting.remove(message.partition)
                }
            case .runMarker(let marker) where marker.marker == .closed:
                closed[message.partition, default: []].insert(marker.run)
            default:
                break  // Not written by an aggregator; nothing to learn from it.
            }
        }
        return closed
    }

    /// Applies one record of the runs topic.
    private func handle(_ message: KafkaMessage, into outbox: inout Outbox) {
        let now = clock.now()
        let partition = message.partition
        let isEarly = state.withLock { state in
            guard case .assigned = state.partitions[partition]?.phase else { return false }
            state.partitions[partition]?.early.append(message)
            return true
        }
        guard !isEarly else { return }
        let frame: Frame
        switch DeadLetter.frame(of: message) {
        case .success(let decoded): frame = decoded
        case .failure(let refusal): return deadLetter(message, reason: refusal.reason, into: &outbox)
        }
        switch frame {
        case .chunk, .task, .conditional:
            return deadLetter(message, reason: "a \(frame.kindName) frame does not belong on \(message.topic)", into: &outbox)
        case .manifest, .partial, .taskResult, .chunkRejected, .runMarker, .partitionMarker:
            break
        }
        state.withLock { state in
            guard var owned = state.partitions[partition] else { return }
            defer { state.partitions[partition] = owned }
            owned.nextOffset = message.offset + 1
            if owned.isLive { metrics.recordsConsumed.increment() }
            switch frame {
            case .partitionMarker(let marker):
                switch marker.marker {
                case .barrier(let token):
                    if case .replaying(token, _) = owned.phase { catchUp(&owned, partition: partition, now: now, into: &outbox) }
                case .deadLettered(let offset):
                    owned.deferredDeadLetters[offset] = nil
                }
            case .manifest, .partial, .taskResult, .chunkRejected, .runMarker:
                let run = frame.run!
                guard !owned.closed.contains(run) else { return }  // Late records of a closed run change nothing.
                var open = owned.runs[run] ?? OpenRun(
                    machine: RunStateMachine(run: run, policy: options.policy, firstSeen: now, isLive: owned.isLive),
                    firstOffset: message.offset)
                // History happened at its own time, and is counted in the metrics when it happened.
                let time = owned.isLive ? now : min(now, message.timestampMilliseconds.map(Timestamp.init) ?? now)
                let (accepted, dropped) = (open.machine.ledger.acceptedPartials, open.machine.ledger.duplicatesDropped)
                let actions = open.machine.handle(.record(frame, at: time))
                if owned.isLive {
                    metrics.partialsAccepted.increment(by: Int64(open.machine.ledger.acceptedPartials - accepted))
                    metrics.duplicatesDropped.increment(by: Int64(open.machine.ledger.duplicatesDropped - dropped))
                }
                outbox.add(actions, of: open.machine.run, partition: partition)
                settle(open, in: &owned, partition: partition, into: &outbox)
            case .chunk, .task, .conditional:
                break  // Dead-lettered above.
            }
        }
    }

    /// The partition's barrier came back: everything before it is applied, so its runs decide
    /// from now on, and malformed records no earlier owner dead-lettered are dead-lettered now.
    private func catchUp(_ owned: inout OwnedPartition, partition: Int32, now: Timestamp, into outbox: inout Outbox) {
        owned.phase = .live
        for run in owned.runs.keys.sorted() {
            var open = owned.runs[run]!
            outbox.add(open.machine.handle(.caughtUp(at: now)), of: open.machine.run, partition: partition)
            settle(open, in: &owned, partition: partition, into: &outbox)
        }
        for (offset, record) in owned.deferredDeadLetters.sorted(by: { $0.key < $1.key }) {
            outbox.deadLetters.append((record, offset, partition))
            metrics.deadLetters.increment()
        }
        owned.deferredDeadLetters = [:]
        logger.info("runs partition caught up", metadata: ["partition": "\(partition)", "open_runs": "\(owned.runs.count)"])
    }

    /// Keeps an open run's machine, or forgets a closed one but for its id.
    private func settle(_ open: OpenRun, in owned: inout OwnedPartition, partition: Int32, into outbox: inout Outbox) {
        let run = open.machine.run
        guard open.machine.isClosed else {
            owned.runs[run] = open
            return
        }
        owned.runs[run] = nil
        owned.closed.insert(run)
        if !owned.isLive {
            // Closed by a marker met in replay but missing from the closed topic (its owner died
            // between the two): record it there too.
            outbox.closed.append(Outbox.Closed(run: run, partition: partition, record: nil))
        }
        if let identity = open.machine.ledger.identity {
            metrics.forget(run: run, model: identity.model, dataset: identity.dataset)
        }
    }

    /// Lets time pass for every open run of every caught-up partition.
    private func tick(into outbox: inout Outbox) {
        let workers = workerProgress()
        let now = clock.now()
        state.withLock { state in
            var open = 0
            for partition in state.partitions.keys {
                guard var owned = state.partitions[partition], owned.isLive else { continue }
                for run in owned.runs.keys {
                    var entry = owned.runs[run]!
                    outbox.add(entry.machine.handle(.tick(now, workers: workers)), of: entry.machine.run, partition: partition)
                    settle(entry, in: &owned, partition: partition, into: &outbox)
                }
                open += owned.runs.count
                state.partitions[partition] = owned
            }
            metrics.runsOpen.record(open)
        }
    }

    /// The workers' progress through the chunks, read again when a second old (five after a
    /// failed read) and some run is open; nil while it cannot be read (repairs then go by time
    /// alone).
    private func workerProgress() -> WorkerProgress? {
        let now = ContinuousClock.now
        let (known, due) = state.withLock { state in
            let open = state.partitions.values.contains { !$0.runs.isEmpty }
            let interval: Duration = state.workers?.progress == nil ? .seconds(5) : .seconds(1)
            return (state.workers?.progress, open && (state.workers.map { now - $0.askedAt >= interval } ?? true))
        }
        guard due else { return known }
        // Short requests, not retried every round: a slow or unreachable coordinator costs a
        // stale answer, not a stalled loop.
        let progress = (try? workerOffsets.committed(topic: topics.chunks, timeoutMilliseconds: 500)).map(WorkerProgress.init)
        state.withLock { $0.workers = (progress, now) }
        return progress
    }

    // MARK: Carrying out actions

    /// Sends everything due, in at most two batches: shared tables (conditionals, SFDA fits),
    /// scores, repairs and dead letters first; then what must follow them — a step's tasks name
    /// where their tables landed, and a decision is recorded (`pass2Issued`, `tasksIssued`,
    /// `repairIssued`, `closed`, dead-lettered) only once what it records is delivered. Retries
    /// until delivered: nothing may be committed before.
    private func deliver(_ outbox: Outbox) throws {
        guard !outbox.isEmpty else { return }
        // First batch: each issue's table parts, in order, then everything else.
        let conditionals = outbox.issues.map { issue in issue.tables.flatMap { tableRecords($0, run: issue.run) } }
        var first = conditionals.flatMap { $0 }
        first += outbox.scores.map(scoreRecord)
        first += taskRecords(outbox.repairs.flatMap { repair in
            repair.tasks.map { TaskFrame(run: repair.run, pass: $0.pass, conditional: [], chunks: $0.chunks) }
        })
        first += outbox.deadLetters.map(\.record)
        let reports = try delivery.deliver("conditionals, scores and repairs") { try producer.send(first) }

        var second: [OutgoingRecord] = []
        var reportIndex = 0
        for (issue, records) in zip(outbox.issues, conditionals) {
            let located = reports[reportIndex..<(reportIndex + records.count)].map {
                RecordLocation(partition: $0.partition, offset: $0.offset)
            }
            reportIndex += records.count
            second += taskRecords(issue.tasks.map {
                TaskFrame(run: issue.run, pass: $0.pass, conditional: located, chunks: $0.chunks)
            })
            if let recorded = issue.marker { second.append(marker(recorded, run: issue.run)) }
            metrics.pass2TasksIssued.increment(by: Int64(issue.tasks.count))
            let message: Logger.Message = switch issue.marker {
            case .pass2Issued?: "pass 2 issued"
            case .tasksIssued(let pass, _)?: "SFDA's \(pass == .sfdaMix ? "mixing" : "scoring") pass issued"
            default: "tasks issued again"
            }
            logger.info(message, metadata: [
                "run": "\(issue.run)", "pass": "\(issue.tasks.first.map { "\($0.pass)" } ?? "none")",
                "tasks": "\(issue.tasks.count)", "table_parts": "\(records.count)",
            ])
        }
        for repair in outbox.repairs {
            second.append(marker(.repairIssued(chunks: UInt32(repair.chunks)), run: repair.run))
            metrics.chunksRepaired.increment(by: Int64(repair.chunks))
            logger.warning("repairing chunks without an accepted partial", metadata: [
                "run": "\(repair.run)", "chunks": "\(repair.chunks)", "tasks": "\(repair.tasks.count)",
            ])
        }
        for closed in outbox.closed {
            if let record = closed.record {
                second.append(marker(.closed, run: closed.run))
                metrics.runClosed(record.status.rawValue)
                logger.info("run closed", metadata: [
                    "run": "\(closed.run)", "status": "\(record.status.rawValue)",
                    "leep": "\(record.leep.map { "\($0)" } ?? "-")", "duplicates_dropped": "\(record.partialsDropped ?? 0)",
                    "reason": "\(record.reason ?? "")",
                ])
            }
            second.append(OutgoingRecord(
                topic: topics.closed, key: Array(closed.run.utf8), value: RunMarkerFrame(run: closed.run, marker: .closed).encoded(),
                partition: closed.partition))
        }
        for letter in outbox.deadLetters {
            second.append(OutgoingRecord(
                topic: topics.runs, value: PartitionMarkerFrame(.deadLettered(offset: letter.offset)).encoded(),
                partition: letter.partition))
        }
        for record in outbox.scores where record.status == .progress {
            metrics.progress(
                run: record.run, model: record.model, dataset: record.dataset, accepted: record.chunksAccepted ?? 0,
                expected: record.chunksExpected, pass: record.pass ?? 1)
        }
        if !second.isEmpty { try delivery.deliver("tasks and markers") { try producer.send(second) } }
    }

    private func marker(_ marker: RunMarkerFrame.Marker, run: String) -> OutgoingRecord {
        OutgoingRecord(topic: topics.runs, key: run, value: RunMarkerFrame(run: run, marker: marker).encoded())
    }

    /// A shared table as conditional frames, each under the message limit: P(y|z) as its Y×Z
    /// matrix, an SFDA fit as `SFDA.Fit.matrix`.
    private func tableRecords(_ table: RunStateMachine.SharedTable, run: String) -> [OutgoingRecord] {
        let (rows, columns, values) = switch table {
        case .conditional(let conditional): (conditional.targetClasses, conditional.sourceClasses, conditional.probabilities)
        case .sfdaFit(let fit): fit.matrix
        }
        let parts = MatrixPart.split(
            cells: values.count, bytesPerCell: ConditionalFrame.bytesPerCell, maxPayloadBytes: options.maxMessageBytes - 4096)
        return parts.map { part in
            OutgoingRecord(topic: topics.conditionals, key: run, value: ConditionalFrame(
                run: run, targetClasses: rows, sourceClasses: columns, part: part,
                values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)])
            ).encoded())
        }
    }

    /// A score record as JSON, keyed by its pair.
    private func scoreRecord(_ record: ScoreRecord) -> OutgoingRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A record of strings and numbers always encodes.
        return OutgoingRecord(
            topic: topics.scores, key: ScoreRecord.key(model: record.model, dataset: record.dataset),
            value: Array(try! encoder.encode(record)))
    }

    /// Task records, each in the partition of the tasks topic numbered like its chunks'
    /// partition (modulo the count). Workers take both topics with the range assignor, so a task
    /// reaches the worker that consumed its chunks in pass 1 and may still hold them in memory
    /// (`ChunkCache`); any other worker fetches them.
    private func taskRecords(_ tasks: [TaskFrame]) -> [OutgoingRecord] {
        let count = taskPartitionCount()
        return tasks.map { task in
            OutgoingRecord(
                topic: topics.tasks, value: task.encoded(),
                partition: count.flatMap { count in task.chunks.first.map { $0.location.partition % count } })
        }
    }

    private func taskPartitionCount() -> Int32? {
        if let known = state.withLock({ $0.taskPartitions }) { return known }
        // Unknown (the broker did not answer): the partitioner spreads them; the next round asks again.
        guard let count = try? producer.partitionCount(of: topics.tasks) else { return nil }
        state.withLock { $0.taskPartitions = count }
        return count
    }

    /// Commits, for every caught-up partition, where a new owner must start.
    private func commit(_ consumer: KafkaConsumer) {
        let due = state.withLock { state in
            state.partitions.compactMap { partition, owned -> (Int32, Int64)? in
                guard owned.isLive, let offset = owned.resumeOffset, offset != owned.committed else { return nil }
                return (partition, offset)
            }
        }
        guard !due.isEmpty else { return }
        do {
            try consumer.commit(offsets: Dictionary(uniqueKeysWithValues: due.map {
                (KafkaTopicPartition(topic: topics.runs, partition: $0.0), $0.1)
            }))
            state.withLock { state in
                for (partition, offset) in due { state.partitions[partition]?.committed = offset }
            }
        } catch {
            // Harmless: the previous commit stands, and a new owner replays a little more.
            logger.warning("commit failed; the next round commits again", metadata: ["error": "\(error)"])
        }
    }

    private func deadLetter(_ message: KafkaMessage, reason: String, into outbox: inout Outbox) {
        let record = DeadLetter.record(for: message, reason: reason, topic: topics.deadLetter)
        let live = state.withLock { state -> Bool in
            guard var owned = state.partitions[message.partition] else { return false }
            owned.nextOffset = message.offset + 1
            defer { state.partitions[message.partition] = owned }
            guard owned.isLive else {
                owned.deferredDeadLetters[message.offset] = record
                return false
            }
            return true
        }
        guard live else { return }
        logger.warning("dead letter", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "reason": "\(reason)",
        ])
        metrics.deadLetters.increment()
        outbox.deadLetters.append((record, message.offset, message.partition))
    }
}

/// What one round must send, gathered from every run's actions: data only, turned into records
/// and sent by `AggregatorCore.deliver`.
struct Outbox {
    /// A task step started (with the marker that records it), or its missing tasks issued
    /// again, with the tables they read.
    struct TaskIssue {
        let run: String
        let tables: [RunStateMachine.SharedTable]
        let tasks: [RunStateMachine.TaskPlan]
        let marker: RunMarkerFrame.Marker?
    }

    /// Repair tasks for `chunks` missing chunks of `run`.
    struct Repair {
        let run: String
        let tasks: [RunStateMachine.TaskPlan]
        let chunks: Int
    }

    /// A run closed: its final or failed `record` (nil when an earlier owner published it and
    /// only the closed topic lacks the run), in its partition.
    struct Closed {
        let run: String
        let partition: Int32
        let record: ScoreRecord?
    }

    var issues: [TaskIssue] = []
    var repairs: [Repair] = []
    var scores: [ScoreRecord] = []
    var closed: [Closed] = []
    var deadLetters: [(record: OutgoingRecord, offset: Int64, partition: Int32)] = []

    var isEmpty: Bool { issues.isEmpty && repairs.isEmpty && scores.isEmpty && closed.isEmpty && deadLetters.isEmpty }

    /// Adds the actions a run's machine returned.
    mutating func add(_ actions: [RunStateMachine.Action], of run: String, partition: Int32) {
        for action in actions {
            switch action {
            case .issue(let tables, let tasks, let marker):
                issues.append(TaskIssue(run: run, tables: tables, tasks: tasks, marker: marker))
            case .repair(let tasks, let chunks):
                repairs.append(Repair(run: run, tasks: tasks, chunks: chunks))
            case .publish(let record):
                scores.append(record)
            case .close(let record):
                scores.append(record)
                closed.append(Closed(run: run, partition: partition, record: record))
            }
        }
    }
}
