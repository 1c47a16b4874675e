import Foundation
#if canImport(Glibc)
import CMalloc
#endif
import Kafka
import Logging
import Synchronization
import WireFormat

/// The aggregator's loop: its partitions' machines and the rounds. Shared by the poll loop and
/// the rebalance handler, both on the polling thread: the mutex makes that safe to state, it is
/// never contended.
///
/// Two clocks, on purpose: the machines decide by the injected wall clock (`clock`, the time
/// records carry and a test can set), while the loop paces its own I/O — a round's budget,
/// how often it asks for the workers' offsets or trims memory — by the monotonic clock, which
/// no decision reads.
final class AggregatorLoop: Sendable {
    struct State {
        var partitions: [Int32: PartitionStateMachine] = [:]
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
    /// Barrier tokens: random, so that no two owners of a partition wait for the same one.
    let makeToken: @Sendable () -> UInt64
    let metrics = AggregatorMetrics()
    let outboxDelivery: OutboxDelivery
    /// Where the runs' long computations run, so that the loop goes on meanwhile.
    let computations: ComputationPool
    let logger: Logger
    private let state = Mutex(State())

    init(
        configuration: KafkaConfiguration, topics: Topics, options: Aggregator.Options, clock: any WallClock,
        makeToken: @escaping @Sendable () -> UInt64 = { UInt64.random(in: 1...UInt64.max) }, delivery: PersistentDelivery,
        logger: Logger
    ) throws(KafkaError) {
        producer = try KafkaProducer(configuration: configuration)
        outboxDelivery = OutboxDelivery(
            sink: producer, topics: topics, maxMessageBytes: options.maxMessageBytes, metrics: metrics, delivery: delivery,
            logger: logger)
        workerOffsets = try KafkaGroupOffsets(
            configuration: configuration, group: options.workersGroup ?? topics.prefix + "workers")
        self.configuration = configuration
        self.topics = topics
        self.options = options
        self.clock = clock
        self.makeToken = makeToken
        self.logger = logger
        computations = ComputationPool(width: options.computationThreads)
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
            for partition in partitions {
                state.partitions[partition] = PartitionStateMachine(
                    partition: partition, policy: options.policy, makeToken: makeToken)
            }
        }
    }

    func revoked(_ partitions: [Int32]) {
        logger.info("runs partitions revoked", metadata: ["partitions": "\(partitions.sorted())"])
        state.withLock { state in
            for partition in partitions { state.partitions[partition] = nil }
        }
    }

    // MARK: The round

    /// One round: write the barriers due and take over, hand the runs the values computed off
    /// the loop, handle what has arrived, let time pass for every run, carry out every action
    /// as one delivery, commit.
    func round(_ consumer: any RunsConsumer) throws {
        var actions: [(Int32, PartitionStateMachine.Action)] = []
        try takeOver(into: &actions)
        for finished in computations.collect() {
            logger.info("run computation done", metadata: [
                "run": "\(finished.run)", "computation": "\(finished.kind)", "seconds": "\(finished.duration)",
            ])
            actions += feed(.computed(run: finished.run, finished.kind, finished.value, at: clock.now()), to: finished.partition)
        }
        let started = ContinuousClock.now
        var handled = 0
        var message = try consumer.poll(timeoutMilliseconds: 100)
        while let current = message {
            let record = self.record(of: current)
            actions += feed(.record(record, at: clock.now()), to: current.partition)
            handled += 1
            guard handled < options.recordsPerRound, ContinuousClock.now - started < .milliseconds(100) else { break }
            message = try consumer.poll(timeoutMilliseconds: 0)
        }
        let (workers, now) = (workerProgress(), clock.now())
        actions += state.withLock { state in
            var actions: [(Int32, PartitionStateMachine.Action)] = []
            for partition in state.partitions.keys.sorted() {
                actions += state.partitions[partition]!.handle(.tick(now, workers: workers)).map { (partition, $0) }
            }
            metrics.runsOpen.record(state.partitions.values.reduce(0) { $0 + $1.runs.count })
            metrics.computationsInFlight.record(computations.inFlight)
            return actions
        }
        let (outbox, commits) = carryOut(actions)
        try outboxDelivery.deliver(outbox)
        commit(commits, consumer)
        if !outbox.closed.isEmpty { releaseFreedMemory() }
    }

    /// Feeds `event` to the machine of `partition` (nothing when it is not assigned here).
    private func feed(_ event: PartitionStateMachine.Event, to partition: Int32) -> [(Int32, PartitionStateMachine.Action)] {
        state.withLock { state in
            guard state.partitions[partition] != nil else { return [] }
            return state.partitions[partition]!.handle(event).map { (partition, $0) }
        }
    }

    /// A record of the runs topic as the machines see it: a frame that belongs there, or its
    /// dead letter and why.
    private func record(of message: KafkaMessage) -> PartitionStateMachine.Record {
        let content: PartitionStateMachine.Record.Content
        switch DeadLetter.frame(of: message) {
        case .failure(let refusal):
            content = .refused(
                deadLetter: DeadLetter.record(for: message, reason: refusal.reason, topic: topics.deadLetter), reason: refusal.reason)
        case .success(let frame):
            switch frame {
            case .chunk, .task, .conditional:
                let reason = "a \(frame.kindName) frame does not belong on \(message.topic)"
                content = .refused(deadLetter: DeadLetter.record(for: message, reason: reason, topic: topics.deadLetter), reason: reason)
            case .manifest, .partial, .rowSample, .taskResult, .chunkRejected, .runMarker, .partitionMarker:
                content = .frame(frame)
            }
        }
        return PartitionStateMachine.Record(
            offset: message.offset, timestamp: message.timestampMilliseconds.map(Timestamp.init), content: content)
    }

    /// Writes the barriers the machines ask for (to the runs topic and the closed topic), reads
    /// the closed runs of those partitions up to them, and tells the machines.
    private func takeOver(into actions: inout [(Int32, PartitionStateMachine.Action)]) throws {
        let now = clock.now()
        let tokens: [Int32: UInt64] = state.withLock { state in
            var tokens: [Int32: UInt64] = [:]
            for partition in state.partitions.keys {
                for case .writeBarrier(let token) in state.partitions[partition]!.handle(.roundStarted(at: now)) {
                    tokens[partition] = token
                }
            }
            return tokens
        }
        guard !tokens.isEmpty else { return }
        var barriers: [OutgoingRecord] = []
        for (partition, token) in tokens.sorted(by: { $0.key < $1.key }) {
            let barrier = PartitionMarkerFrame(.barrier(token: token)).encoded()
            barriers.append(OutgoingRecord(topic: topics.runs, key: nil, value: barrier, partition: partition))
            // One key for every barrier, so compaction keeps only the latest of each partition.
            barriers.append(OutgoingRecord(topic: topics.closed, key: Array("barrier".utf8), value: barrier, partition: partition))
        }
        try producer.send(barriers)
        let closed = try readClosedRuns(of: tokens)
        for (partition, token) in tokens.sorted(by: { $0.key < $1.key }) {
            actions += feed(.barrierWritten(token: token, closedRuns: closed[partition] ?? [], at: now), to: partition)
        }
        logger.info("replaying runs partitions up to their barriers", metadata: [
            "partitions": "\(tokens.keys.sorted())", "closed_runs": "\(closed.values.reduce(0) { $0 + $1.count })",
        ])
    }

    /// The machines' actions as one round's outbox and the offsets to commit; metrics are
    /// counted and log lines written as they come.
    private func carryOut(_ actions: [(Int32, PartitionStateMachine.Action)]) -> (Outbox, [Int32: Int64]) {
        var outbox = Outbox()
        var commits: [Int32: Int64] = [:]
        for (partition, action) in actions {
            switch action {
            case .writeBarrier:
                break  // Written by `takeOver`, which asks for them.
            case .forward(let run, let decided):
                for case .compute(let computation) in decided {
                    computations.start(computation, run: run, partition: partition)
                }
                outbox.add(decided, of: run, partition: partition)
            case .deadLetter(let record, let offset, let reason):
                logger.warning("dead letter", metadata: [
                    "topic": "\(topics.runs)", "partition": "\(partition)", "offset": "\(offset)", "reason": "\(reason)",
                ])
                outbox.deadLetters.append((record, offset, partition))
            case .recordClosed(let run):
                outbox.closed.append(Outbox.Closed(run: run, partition: partition, record: nil))
            case .caughtUp(let openRuns):
                logger.info("runs partition caught up", metadata: ["partition": "\(partition)", "open_runs": "\(openRuns)"])
            case .commit(let offset):
                commits[partition] = offset
            case .metric(let metric):
                metrics.count(metric)
            }
        }
        return (outbox, commits)
    }

    /// Commits where a new owner of each partition must start; a failure is harmless (the
    /// previous commit stands, and a new owner replays a little more).
    private func commit(_ offsets: [Int32: Int64], _ consumer: any RunsConsumer) {
        guard !offsets.isEmpty else { return }
        do {
            try consumer.commit(offsets: Dictionary(uniqueKeysWithValues: offsets.map {
                (KafkaTopicPartition(topic: topics.runs, partition: $0.key), $0.value)
            }))
            for (partition, offset) in offsets { _ = feed(.committed(offset), to: partition) }
        } catch {
            logger.warning("commit failed; the next round commits again", metadata: ["error": "\(error)"])
        }
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

}

/// The consumer of the runs topic the loop reads from: a `KafkaConsumer`, or a test's.
protocol RunsConsumer {
    /// The next record, or nil when none arrived within `timeoutMilliseconds`.
    func poll(timeoutMilliseconds: Int32) throws(KafkaError) -> KafkaMessage?
    /// Commits where the group resumes, per partition.
    func commit(offsets: [KafkaTopicPartition: Int64]) throws(KafkaError)
}

extension KafkaConsumer: RunsConsumer {}

extension AggregatorMetrics {
    /// Counts what a partition's machine reported.
    func count(_ metric: AggregatorMetric) {
        switch metric {
        case .recordConsumed: recordsConsumed.increment()
        case .partialAccepted: partialsAccepted.increment()
        case .duplicateDropped: duplicatesDropped.increment()
        case .deadLettered: deadLetters.increment()
        case .forget(let run, let model, let dataset): forget(run: run, model: model, dataset: dataset)
        }
    }
}
