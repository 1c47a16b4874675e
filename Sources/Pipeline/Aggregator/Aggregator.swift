import Foundation
import Kafka
import LEEPCore
import Logging
import Synchronization
import WireFormat

/// `leep aggregate`: a member of the aggregators' consumer group. It owns the runs whose
/// records land in its partitions of the runs topic, rebuilds their ledgers by replaying those
/// partitions from the beginning, and acts on them: starts pass 2, issues repairs, publishes
/// progress and the final (or failed) score.
///
/// Every decision depends only on the ledger, so a second aggregator that takes over — after a
/// crash, a freeze or a rebalance — decides the same; anything published twice is harmless
/// (tasks count once per id, scores are keyed by pair).
public final class Aggregator: Sendable {
    /// Tuning knobs.
    public struct Options: Sendable {
        /// Issue repair tasks for chunks still missing after this long without progress.
        public var repairAfter: Duration = .seconds(10)
        /// Chunks per task.
        public var chunksPerTask = 32
        /// The broker's message limit: conditionals are split to stay under it.
        public var maxMessageBytes = 1_000_000
        /// Minimum time between two progress records of one run.
        public var progressInterval: Duration = .seconds(1)
        /// Publish `incomplete` for a run whose manifests are not all in and that has had no
        /// record for this long.
        public var incompleteAfter: Duration = .seconds(60)

        /// Defaults.
        public init() {}
    }

    private let core: AggregatorCore
    private let consumer: KafkaConsumer
    /// Whether the poll loop is alive (`/health`).
    public let health = RoleHealth(role: "aggregator")

    /// Joins `group` and subscribes to the runs topic.
    public init(
        configuration: KafkaConfiguration, group: String, topics: Topics, options: Options = Options(), logger: Logger
    ) throws(KafkaError) {
        let core = try AggregatorCore(configuration: configuration, topics: topics, options: options, logger: logger)
        self.core = core
        consumer = try KafkaConsumer(
            configuration: configuration.merging(["group.id": group]), topics: [topics.runs]
        ) { rebalance, _ in
            // Nothing is committed: a partition is always replayed from its beginning, which is
            // how a new owner rebuilds the ledgers of the runs in it.
            switch rebalance {
            case .assigned(let partitions): core.assigned(partitions.map(\.partition))
            case .revoked(let partitions): core.revoked(partitions.map(\.partition))
            }
        }
    }

    /// Processes records until `shutdown` is triggered.
    public func run(until shutdown: ShutdownSignal) throws {
        var lastAction = ContinuousClock.now
        // Aggregators never commit (they replay their partitions), so their lag is measured
        // from where they have read to.
        var upkeep = LoopUpkeep(health: health, topicPrefix: core.topics.prefix, lagFrom: .position)
        defer { health.stop() }
        while !shutdown.isTriggered {
            upkeep.round(consumer)
            if let message = try consumer.poll(timeoutMilliseconds: 200) {
                if core.handle(message) {
                    // A run just became ready for pass 2 or for its final score: what a user
                    // waits for, so it is not left to the next periodic round.
                    core.act()
                    lastAction = .now
                }
            } else {
                core.caughtUp()
            }
            if ContinuousClock.now - lastAction >= .milliseconds(200) {
                core.act()
                lastAction = .now
            }
        }
        consumer.close()
        core.logger.info("aggregator stopped")
    }
}

/// The aggregator's ledgers and actions, shared by the poll loop and the rebalance handler
/// (both on the polling thread).
final class AggregatorCore: Sendable {
    /// A ledger plus what this process has done about it (not replayed: another process
    /// starting afresh may redo these, harmlessly).
    struct OwnedRun {
        var ledger: RunLedger
        let partition: Int32
        var lastProgress = ContinuousClock.now
        var lastActivity = ContinuousClock.now
        var incompleteReported = false
        var lastRepair: ContinuousClock.Instant?
        var lastPublishedProgress: String?
        var lastProgressPublished: ContinuousClock.Instant?
        var pass2Issued: ContinuousClock.Instant?
        var closing = false
        var progressMark = 0
    }

    struct State {
        var runs: [String: OwnedRun] = [:]
        /// Partitions assigned and when; actions wait until they are replayed.
        var replaying: [Int32: ContinuousClock.Instant] = [:]
        /// Partitions of the tasks topic, once looked up.
        var taskPartitions: Int32?
    }

    let producer: KafkaProducer
    let topics: Topics
    let options: Aggregator.Options
    let metrics = AggregatorMetrics()
    let logger: Logger
    private let state = Mutex(State())

    init(configuration: KafkaConfiguration, topics: Topics, options: Aggregator.Options, logger: Logger) throws(KafkaError) {
        producer = try KafkaProducer(configuration: configuration)
        self.topics = topics
        self.options = options
        self.logger = logger
    }

    func assigned(_ partitions: [Int32]) {
        logger.info("runs partitions assigned; replaying them", metadata: ["partitions": "\(partitions)"])
        state.withLock { state in
            for partition in partitions { state.replaying[partition] = .now }
        }
    }

    func revoked(_ partitions: [Int32]) {
        state.withLock { state in
            state.runs = state.runs.filter { !partitions.contains($0.value.partition) }
            for partition in partitions { state.replaying[partition] = nil }
        }
    }

    /// No record arrived for a poll interval: every assigned partition is replayed.
    func caughtUp() {
        state.withLock { $0.replaying.removeAll() }
    }

    /// Applies one record of the runs topic; returns true when it made its run ready for a
    /// decision that ends a phase (pass 2 can be issued, or the final score published).
    @discardableResult
    func handle(_ message: KafkaMessage) -> Bool {
        metrics.recordsConsumed.increment()
        let frame: Frame
        do {
            frame = try Frame.decode(message.value)
        } catch {
            deadLetter(message, reason: error.description)
            return false
        }
        switch frame {
        case .manifest, .partial, .taskResult, .chunkRejected, .runMarker:
            return state.withLock { state in
                var owned = state.runs[frame.run] ?? OwnedRun(ledger: RunLedger(run: frame.run), partition: message.partition)
                let (accepted, dropped) = (owned.ledger.acceptedPartials, owned.ledger.duplicatesDropped)
                owned.ledger.apply(frame)
                // A replay after an assignment re-applies history: counted once, when it happened.
                if state.replaying[message.partition] == nil {
                    metrics.partialsAccepted.increment(by: Int64(owned.ledger.acceptedPartials - accepted))
                    metrics.duplicatesDropped.increment(by: Int64(owned.ledger.duplicatesDropped - dropped))
                }
                owned.lastActivity = .now
                owned.incompleteReported = false
                // Progress: a partial accepted or a pass-2 result in. Repairs wait for its absence.
                let progress = owned.ledger.acceptedPartials + owned.ledger.results.count
                if progress != owned.progressMark {
                    owned.progressMark = progress
                    owned.lastProgress = .now
                }
                state.runs[frame.run] = owned
                let ledger = owned.ledger
                return ledger.isReadyForPass2 || ledger.pass2Results.map { $0.done == $0.expected } == true
            }
        case .chunk, .task, .conditional:
            deadLetter(message, reason: "a \(frame.kindName) frame does not belong on \(message.topic)")
            return false
        }
    }

    /// Takes every decision that is due. Waits while a partition is being replayed (or for at
    /// most 5 s after its assignment), so a decision already recorded later in the partition is
    /// not taken again.
    func act() {
        let runs: [OwnedRun] = state.withLock { state in
            let now = ContinuousClock.now
            state.replaying = state.replaying.filter { now - $0.value < .seconds(5) }
            metrics.runsOpen.record(state.runs.values.filter { $0.ledger.phase != .closed && !$0.closing }.count)
            return state.runs.values.filter { !state.replaying.keys.contains($0.partition) }
        }
        for owned in runs where owned.ledger.phase != .closed && !owned.closing {
            do {
                try act(on: owned)
            } catch {
                logger.error("action failed; it will be retried", metadata: ["run": "\(owned.ledger.run)", "error": "\(error)"])
            }
        }
    }

    private func act(on owned: OwnedRun) throws {
        let ledger = owned.ledger
        let now = ContinuousClock.now
        if let reason = ledger.failure {
            return try close(ledger, record: failedRecord(ledger, reason: reason))
        }
        if let outcome = ledger.finalScore() {
            switch outcome {
            case .success(let score): return try close(ledger, record: finalRecord(ledger, score: score))
            case .failure(let failure): return try close(ledger, record: failedRecord(ledger, reason: failure.reason))
            }
        }
        if ledger.isReadyForPass2 && owned.pass2Issued == nil {
            try issuePass2(ledger)
        } else if case .pass2(let expected) = ledger.phase, let issued = owned.pass2Issued,
                  now - max(issued, owned.lastProgress) >= options.repairAfter {
            // No result for a while: a task may have been skipped past; issue the missing ones again.
            let missing = expected.filter { ledger.results[$0] == nil }
            try issuePass2(ledger, only: missing)
        } else if case .pass2 = ledger.phase, owned.pass2Issued == nil {
            // Replayed after the marker: count from now before issuing anything again.
            update(ledger.run) { $0.pass2Issued = now }
        } else if ledger.phase == .collecting, ledger.manifestsComplete, !ledger.missingChunks.isEmpty,
                  now - owned.lastProgress >= options.repairAfter,
                  owned.lastRepair.map({ now - $0 >= options.repairAfter }) ?? true {
            try repair(ledger)
        } else if ledger.phase == .collecting, !ledger.manifestsComplete, !owned.incompleteReported,
                  now - owned.lastActivity >= options.incompleteAfter {
            // Not a failure: the missing shards may still arrive, and the run then goes on.
            var record = baseRecord(ledger, status: .incomplete)
            let seconds = Int(options.incompleteAfter.components.seconds)
            record.reason = "no record for \(seconds) s; " + ledger.missingSummary
            record.chunksAccepted = ledger.accepted.count
            try publish(record)
            update(ledger.run) { $0.incompleteReported = true }
            logger.warning("run incomplete", metadata: ["run": "\(ledger.run)", "reason": "\(record.reason!)"])
        }
        try publishProgress(owned)
    }

    // MARK: Decisions

    private func issuePass2(_ ledger: RunLedger, only subset: Set<UInt64>? = nil) throws {
        guard let joint = ledger.joint else { return }
        let conditional = ConditionalTable(joint: joint)
        let parts = MatrixPart.split(
            cells: conditional.probabilities.count, bytesPerCell: ConditionalFrame.bytesPerCell,
            maxPayloadBytes: options.maxMessageBytes - 4096)
        let conditionalRecords = parts.map { part in
            OutgoingRecord(topic: topics.conditionals, key: ledger.run, value: ConditionalFrame(
                run: ledger.run, targetClasses: conditional.targetClasses, sourceClasses: conditional.sourceClasses, part: part,
                values: Array(conditional.probabilities[part.cellStart..<(part.cellStart + part.cellCount)])
            ).encoded())
        }
        let locations = try producer.send(conditionalRecords).map { RecordLocation(partition: $0.partition, offset: $0.offset) }
        var tasks = tasks(of: ledger.expectedChunks, pass: ledger.eepAccuracyRequested ? .eepWithAccuracy : .eep, run: ledger.run, conditional: locations)
        if let subset { tasks = tasks.filter { subset.contains($0.taskID) } }
        try producer.send(taskRecords(tasks))
        metrics.pass2TasksIssued.increment(by: Int64(tasks.count))
        if subset == nil {
            let marker = RunMarkerFrame(run: ledger.run, marker: .pass2Issued(taskIDs: tasks.map(\.taskID)))
            try producer.send([OutgoingRecord(topic: topics.runs, key: ledger.run, value: marker.encoded())])
        }
        update(ledger.run) { $0.pass2Issued = .now }
        logger.info(subset == nil ? "pass 2 issued" : "pass 2 tasks issued again", metadata: [
            "run": "\(ledger.run)", "tasks": "\(tasks.count)", "conditional_parts": "\(parts.count)",
        ])
    }

    private func repair(_ ledger: RunLedger) throws {
        let missing = ledger.missingChunks
        let tasks = tasks(of: missing, pass: .repair, run: ledger.run, conditional: [])
        try producer.send(taskRecords(tasks))
        metrics.chunksRepaired.increment(by: Int64(missing.count))
        let marker = RunMarkerFrame(run: ledger.run, marker: .repairIssued(chunks: UInt32(missing.count)))
        try producer.send([OutgoingRecord(topic: topics.runs, key: ledger.run, value: marker.encoded())])
        update(ledger.run) { $0.lastRepair = .now }
        logger.warning("repairing chunks without an accepted partial", metadata: [
            "run": "\(ledger.run)", "chunks": "\(ledger.missingChunks.count)", "tasks": "\(tasks.count)",
            "duplicates_dropped": "\(ledger.duplicatesDropped)",
        ])
    }

    /// Cuts chunks into tasks: by partition, in offset order, `chunksPerTask` at a time, so a
    /// worker reads each task's chunks with one forward scan. Deterministic, so task ids are.
    /// Task records, each in the partition of the tasks topic numbered like its chunks'
    /// partition (modulo the count). Workers take both topics with the range assignor, so a task
    /// reaches the worker that consumed its chunks in pass 1 and may still hold them in memory
    /// (`ChunkCache`); any other worker fetches them.
    private func taskRecords(_ tasks: [TaskFrame]) throws -> [OutgoingRecord] {
        let count = try state.withLock { state throws(KafkaError) -> Int32 in
            if let known = state.taskPartitions { return known }
            let count = try producer.partitionCount(of: topics.tasks)
            state.taskPartitions = count
            return count
        }
        return tasks.map { task in
            OutgoingRecord(
                topic: topics.tasks, value: task.encoded(),
                partition: task.chunks.first.map { $0.location.partition % count })
        }
    }

    private func tasks(of chunks: [LocatedChunk], pass: TaskFrame.Pass, run: String, conditional: [RecordLocation]) -> [TaskFrame] {
        let byPartition = Dictionary(grouping: chunks, by: \.location.partition)
        return byPartition.keys.sorted().flatMap { partition in
            let sorted = byPartition[partition]!.sorted { $0.location.offset < $1.location.offset }
            return stride(from: 0, to: sorted.count, by: options.chunksPerTask).map { start in
                TaskFrame(
                    run: run, pass: pass, conditional: conditional,
                    chunks: Array(sorted[start..<min(sorted.count, start + options.chunksPerTask)]))
            }
        }
    }

    private func close(_ ledger: RunLedger, record: ScoreRecord) throws {
        try publish(record)
        try producer.send([OutgoingRecord(
            topic: topics.runs, key: ledger.run, value: RunMarkerFrame(run: ledger.run, marker: .closed).encoded())])
        update(ledger.run) { $0.closing = true }
        metrics.runClosed(record.status.rawValue)
        if let identity = ledger.identity { metrics.forget(run: ledger.run, model: identity.model, dataset: identity.dataset) }
        logger.info("run closed", metadata: [
            "run": "\(ledger.run)", "status": "\(record.status.rawValue)", "leep": "\(record.leep.map { "\($0)" } ?? "-")",
            "duplicates_dropped": "\(ledger.duplicatesDropped)", "reason": "\(record.reason ?? "")",
        ])
    }

    private func publishProgress(_ owned: OwnedRun) throws {
        let ledger = owned.ledger
        guard let identity = ledger.identity else { return }
        var record = ScoreRecord(model: identity.model, dataset: identity.dataset, run: ledger.run, status: .progress)
        record.sourceClasses = ledger.sourceClasses
        record.chunksAccepted = ledger.accepted.count
        record.chunksExpected = ledger.expectedChunkCount
        if let results = ledger.pass2Results {
            record.pass = 2
            record.tasksDone = results.done
            record.tasksExpected = results.expected
            record.targetClasses = ledger.targetClasses
        } else {
            record.pass = 1
        }
        metrics.progress(
            run: ledger.run, model: identity.model, dataset: identity.dataset, accepted: ledger.accepted.count,
            expected: ledger.expectedChunkCount, pass: record.pass!)
        let summary = "\(record.pass!) \(record.chunksAccepted!) \(record.chunksExpected ?? -1) \(record.tasksDone ?? -1)"
        guard summary != owned.lastPublishedProgress,
              owned.lastProgressPublished.map({ ContinuousClock.now - $0 >= options.progressInterval }) ?? true
        else { return }
        try publish(record)
        update(ledger.run) {
            $0.lastPublishedProgress = summary
            $0.lastProgressPublished = .now
        }
    }

    private func finalRecord(_ ledger: RunLedger, score: LEEPScore) -> ScoreRecord {
        var record = baseRecord(ledger, status: .final)
        record.leep = score.leep
        record.nce = score.nce
        record.eepAccuracy = score.eepAccuracy
        record.n = score.sampleCount
        record.sourceClasses = score.sourceClasses
        record.targetClasses = score.targetClasses
        return record
    }

    private func failedRecord(_ ledger: RunLedger, reason: String) -> ScoreRecord {
        var record = baseRecord(ledger, status: .failed)
        record.reason = reason
        record.sourceClasses = ledger.sourceClasses
        return record
    }

    private func baseRecord(_ ledger: RunLedger, status: ScoreRecord.Status) -> ScoreRecord {
        let identity = ledger.identity ?? RunIdentity(id: ledger.run, model: "", dataset: "")
        var record = ScoreRecord(model: identity.model, dataset: identity.dataset, run: ledger.run, status: status)
        record.partialsDropped = ledger.duplicatesDropped
        record.chunksRepaired = ledger.chunksRepaired
        return record
    }

    private func publish(_ record: ScoreRecord) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        try producer.send([OutgoingRecord(
            topic: topics.scores, key: ScoreRecord.key(model: record.model, dataset: record.dataset),
            value: Array(try encoder.encode(record)))])
    }

    private func update(_ run: String, _ change: (inout OwnedRun) -> Void) {
        state.withLock { state in
            if var owned = state.runs[run] {
                change(&owned)
                state.runs[run] = owned
            }
        }
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) {
        logger.warning("dead letter", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "reason": "\(reason)",
        ])
        metrics.deadLetters.increment()
        do {
            try producer.send([DeadLetter.record(for: message, reason: reason, topic: topics.deadLetter)])
        } catch {
            logger.error("cannot publish a dead letter", metadata: ["error": "\(error)"])
        }
    }
}
