#if canImport(Glibc)
import Glibc
#endif
import Kafka
import LEEPCore
import Logging
import Synchronization
import WireFormat

/// `leep worker`: a member of the workers' consumer group. It turns chunks into pass-1 partial
/// sums and does the aggregator's tasks (repairs and pass 2).
///
/// Delivery is at-least-once: offsets are committed only after the partials covering every
/// consumed chunk are delivered (on a timer, on a revocation, on shutdown). A worker that dies
/// in between leaves chunks that another worker consumes again; the aggregator drops the
/// overlapping partial and repairs what is missing (docs/architecture.md, "Exactly once").
public final class Worker: Sendable {
    /// Tuning knobs.
    public struct Options: Sendable {
        /// Bytes of chunk records kept in memory from pass 1 for pass 2 (`ChunkCache`); 0 turns
        /// the cache off.
        public var chunkCacheBytes = 512 << 20
        /// How long pass-1 sums may wait before they are flushed as partials while records keep
        /// coming. They are also flushed as soon as the stream pauses (a poll of 50 ms comes
        /// back empty), which is what ends a run without waiting for the interval.
        public var flushInterval: Duration = .seconds(1)
        /// Flush early once this many chunk bytes are pending.
        public var maxPendingBytes = 256 << 20
        /// Flush early once one partial covers this many chunks: every part of a partial lists
        /// its chunks (16 bytes each), which must leave room for the sums within a message.
        public var maxChunksPerPartial = 4096
        /// The broker's message limit: partials are split to stay under it.
        public var maxMessageBytes = 1_000_000
        /// The acceptance rule for rows.
        public var check = RowCheck()

        /// Defaults.
        public init() {}
    }

    private let core: WorkerCore
    private let consumer: KafkaConsumer
    /// Whether the poll loop is alive (`/health`).
    public let health = RoleHealth(role: "worker")

    /// Joins `group` and subscribes to the chunks and tasks topics.
    public init(
        configuration: KafkaConfiguration, group: String, topics: Topics, options: Options = Options(), logger: Logger
    ) throws(KafkaError) {
        let core = try WorkerCore(configuration: configuration, topics: topics, options: options, logger: logger)
        self.core = core
        // Workers scale by process: one core each, so pass 2's products stay on this thread.
        MatrixProducts.useCallingThreadOnly()
        // The range assignor gives each worker the same partition numbers of both topics, so a
        // pass-2 task lands where its chunks were consumed (see `ChunkCache`).
        consumer = try KafkaConsumer(
            configuration: configuration.merging(["partition.assignment.strategy": "range"], keepingExisting: true)
                .merging(["group.id": group]),
            topics: [topics.chunks, topics.tasks]
        ) { rebalance, commit in
            // Partitions are about to move: deliver what their records produced, then commit,
            // so the next owner starts after them and nothing needs repair.
            if case .revoked(let partitions) = rebalance {
                core.flushPending()
                do { try commit() } catch { logger.warning("commit on revoke failed", metadata: ["error": "\(error)"]) }
                logger.info("partitions revoked", metadata: ["partitions": "\(partitions.count)"])
            } else if case .assigned(let partitions) = rebalance {
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions)"])
            }
        }
    }

    /// Processes records until `shutdown` is triggered, then flushes, commits and leaves the
    /// group.
    public func run(until shutdown: ShutdownSignal) throws {
        var lastFlush = ContinuousClock.now
        var upkeep = LoopUpkeep(health: health, topicPrefix: core.topics.prefix, lagFrom: .committed)
        defer { health.stop() }
        while !shutdown.isTriggered {
            upkeep.round(consumer)
            // With sums pending, a short wait: a poll that comes back empty means the stream has
            // paused (often: the producer is done), and the aggregator is waiting for these sums.
            let message = try consumer.poll(timeoutMilliseconds: core.hasPending ? 50 : 100)
            if let message {
                core.handle(message)
            }
            let idle = message == nil
            if core.hasPending && (idle || ContinuousClock.now - lastFlush >= core.options.flushInterval || core.isFull) {
                core.flushPending()
                try consumer.commit()
                lastFlush = .now
            } else if !core.hasPending && core.needsCommit {
                // Tasks alone: their results are delivered, so their offsets can be committed.
                try consumer.commit()
                core.committed()
            }
        }
        core.flushPending()
        try consumer.commit()
        consumer.close()
        core.logger.info("worker stopped", metadata: core.statistics)
    }
}

/// The worker's state and logic, shared by the poll loop and the rebalance handler (both run on
/// the polling thread; the mutex makes that safe to state, not contended).
final class WorkerCore: Sendable {
    struct PendingKey: Hashable {
        let run: String
        let targetClasses: Int
        let sourceClasses: Int
    }

    struct State {
        var pending: [PendingKey: PendingPartial] = [:]
        var pendingBytes = 0
        var largestPartial = 0
        var needsCommit = false
        var conditionals: [String: (locations: [RecordLocation], table: ConditionalTable)] = [:]
        /// Z of each run as first seen here, to catch a chunk whose class count differs.
        var sourceClasses: [String: Int] = [:]
        var chunksConsumed = 0
        var partialsFlushed = 0
        var tasksDone = 0
        var deadLetters = 0
        var rejections = 0
        /// CPU seconds of the polling thread spent on chunks (pass 1) and on tasks (pass 2 and
        /// repairs, fetching included), and the chunk bytes of pass 1: what `bench/` reports.
        var pass1Seconds = 0.0
        var taskSeconds = 0.0
        var pass1Bytes = 0
        /// Chunks kept from pass 1 for pass 2.
        var cache: ChunkCache
    }

    let producer: KafkaProducer
    let fetcher: KafkaFetcher
    let metrics = WorkerMetrics()
    let topics: Topics
    let options: Worker.Options
    let logger: Logger
    private let state: Mutex<State>

    init(configuration: KafkaConfiguration, topics: Topics, options: Worker.Options, logger: Logger) throws(KafkaError) {
        state = Mutex(State(cache: ChunkCache(capacityBytes: options.chunkCacheBytes)))
        producer = try KafkaProducer(configuration: configuration)
        fetcher = try KafkaFetcher(configuration: configuration)
        self.topics = topics
        self.options = options
        self.logger = logger
    }

    var hasPending: Bool { state.withLock { !$0.pending.isEmpty } }
    /// True when pending sums must be flushed before more are added.
    var isFull: Bool {
        state.withLock { $0.pendingBytes >= options.maxPendingBytes || $0.largestPartial >= options.maxChunksPerPartial }
    }
    var needsCommit: Bool { state.withLock { $0.needsCommit } }
    func committed() { state.withLock { $0.needsCommit = false } }

    var statistics: Logger.Metadata {
        state.withLock { state in
            [
                "chunks": "\(state.chunksConsumed)", "partials": "\(state.partialsFlushed)", "tasks": "\(state.tasksDone)",
                "dead_letters": "\(state.deadLetters)", "rejections": "\(state.rejections)",
                "cpu_pass1_s": "\(state.pass1Seconds)", "cpu_tasks_s": "\(state.taskSeconds)",
                "pass1_bytes": "\(state.pass1Bytes)",
                "chunk_cache_hits": "\(state.cache.hits)", "chunk_cache_misses": "\(state.cache.misses)",
            ]
        }
    }

    /// Handles one record of the chunks or tasks topic. Errors never stop the worker: bad
    /// records go to the dead-letter topic, bad rows fail their run, and a Kafka error on a
    /// task leaves it uncommitted so it is done again.
    func handle(_ message: KafkaMessage) {
        let frame: Frame
        do {
            frame = try Frame.decode(message.value)
        } catch {
            deadLetter(message, reason: error.description)
            return
        }
        let isChunk = message.topic == topics.chunks
        (isChunk ? metrics.chunksConsumed : metrics.tasksConsumed).increment()
        (isChunk ? metrics.chunkBytes : metrics.taskBytes).increment(by: Int64(message.value.count))
        switch (isChunk, frame) {
        case (true, .chunk(let chunk)):
            let started = threadCPUSeconds()
            let rejection = accumulate(
                chunk, at: RecordLocation(partition: message.partition, offset: message.offset), bytes: message.value.count)
            let spent = threadCPUSeconds() - started
            state.withLock { $0.pass1Seconds += spent; $0.pass1Bytes += message.value.count }
            if let rejection {
                // The record is well formed but cannot be scored: its run fails, and the record
                // itself goes to the dead-letter topic with the reason, like a malformed one.
                reject(chunk.run, chunk: chunk.id, reason: rejection)
                deadLetter(message, reason: rejection)
            }
        case (false, .task(let task)):
            do {
                let started = threadCPUSeconds()
                try perform(task)
                let spent = threadCPUSeconds() - started
                state.withLock { $0.tasksDone += 1; $0.needsCommit = true; $0.taskSeconds += spent }
                let pass = switch task.pass {
                case .repair: "repair"
                case .eep: "eep"
                case .eepWithAccuracy: "eep_accuracy"
                }
                metrics.taskDone(pass)
            } catch {
                logger.error("task failed; it stays uncommitted and will be retried", metadata: [
                    "run": "\(task.run)", "task": "\(task.taskID)", "error": "\(error)",
                ])
            }
        default:
            deadLetter(message, reason: "a \(frame.kindName) frame does not belong on \(message.topic)")
        }
    }

    /// Adds the chunk to its run's pending sums and keeps it for pass 2; returns why it cannot
    /// be added, if it cannot.
    private func accumulate(_ chunk: ChunkFrame, at location: RecordLocation, bytes: Int) -> String? {
        let key = PendingKey(run: chunk.run.id, targetClasses: chunk.targetClasses, sourceClasses: chunk.sourceClasses)
        return state.withLock { state in
            state.chunksConsumed += 1
            if state.sourceClasses.count > 100_000 { state.sourceClasses.removeAll() }
            let known = state.sourceClasses[chunk.run.id, default: chunk.sourceClasses]
            guard known == chunk.sourceClasses else {
                return "\(chunk.id): the chunk has \(chunk.sourceClasses) source classes, its run has \(known)"
            }
            state.sourceClasses[chunk.run.id] = known
            // Taken out of the dictionary while it is added to, so its arrays are not shared.
            var partial = state.pending.removeValue(forKey: key)
                ?? PendingPartial(run: chunk.run.id, targetClasses: chunk.targetClasses, sourceClasses: chunk.sourceClasses)
            defer { state.pending[key] = partial }
            // The same record consumed twice before a flush (a producer retry) adds nothing.
            guard !partial.covers(chunk.id) else { return nil }
            do {
                try partial.add(chunk, check: options.check)
            } catch {
                return "\(chunk.id): \(error)"
            }
            partial.record(chunk.id)
            state.cache.insert(chunk, at: location, bytes: bytes)
            metrics.cacheBytes.record(state.cache.bytes)
            state.pendingBytes += bytes
            state.largestPartial = max(state.largestPartial, partial.chunks.count)
            return nil
        }
    }

    /// Publishes every pending partial and waits for delivery. After it returns, every chunk
    /// consumed so far is covered by a delivered partial, so offsets may be committed.
    func flushPending() {
        let pending = state.withLock { state in
            let pending = state.pending
            state.pending = [:]
            state.pendingBytes = 0
            state.largestPartial = 0
            return pending
        }
        guard !pending.isEmpty else { return }
        let records = pending.values.flatMap { partial in
            partial.frames(maxMessageBytes: options.maxMessageBytes).map {
                OutgoingRecord(topic: topics.runs, key: partial.run, value: $0.encoded())
            }
        }
        sendUntilDelivered(records, what: "partials")
        state.withLock { $0.partialsFlushed += pending.count }
        metrics.partialsFlushed.increment(by: Int64(pending.count))
    }

    private func perform(_ task: TaskFrame) throws {
        // Chunks still held from pass 1 first; the rest from the broker.
        var (held, cachedBytes) = state.withLock { state in
            (task.chunks.map { state.cache.take($0.location, id: $0.id) }, state.cache.bytes)
        }
        let missing = task.chunks.indices.filter { held[$0] == nil }
        metrics.cacheHits.increment(by: Int64(task.chunks.count - missing.count))
        metrics.cacheMisses.increment(by: Int64(missing.count))
        metrics.cacheBytes.record(cachedBytes)
        let messages = try fetcher.fetch(
            topic: topics.chunks, locations: missing.map { (task.chunks[$0].location.partition, task.chunks[$0].location.offset) })
        for (index, message) in zip(missing, messages) {
            if case .chunk(let chunk) = try? Frame.decode(message.value) { held[index] = chunk }
        }
        var chunks: [ChunkFrame] = []
        for (located, chunk) in zip(task.chunks, held) {
            guard let chunk, chunk.id == located.id, chunk.run.id == task.run else {
                // A manifest pointing at a record that is not the chunk it names: the run
                // cannot be scored (retrying would read the same record again).
                let run = RunIdentity(id: task.run, model: "", dataset: "")
                reject(run, chunk: located.id, reason: "the record at partition \(located.location.partition) offset "
                    + "\(located.location.offset) is not chunk \(located.id) of the run, as its manifest says")
                return
            }
            chunks.append(chunk)
        }
        switch task.pass {
        case .repair: try repair(task, chunks: chunks)
        case .eep, .eepWithAccuracy: try computeEEP(task, chunks: chunks)
        }
    }

    /// Pass 1 over exactly the task's chunks, published as one partial.
    private func repair(_ task: TaskFrame, chunks: [ChunkFrame]) throws {
        guard let first = chunks.first else { return }
        var partial = PendingPartial(
            run: task.run, targetClasses: chunks.map(\.targetClasses).max()!, sourceClasses: first.sourceClasses)
        for chunk in chunks {
            do {
                try partial.add(chunk, check: options.check)
            } catch {
                reject(chunk.run, chunk: chunk.id, reason: "\(chunk.id): \(error)")
                return
            }
            partial.record(chunk.id)
        }
        let records = partial.frames(maxMessageBytes: options.maxMessageBytes).map {
            OutgoingRecord(topic: topics.runs, key: task.run, value: $0.encoded())
        }
        try producer.send(records)
    }

    /// Pass 2 over the task's chunks with the run's final conditional.
    private func computeEEP(_ task: TaskFrame, chunks: [ChunkFrame]) throws {
        var adder = EEPAdder(conditional: try conditional(for: task), accuracy: task.pass == .eepWithAccuracy)
        for chunk in chunks {
            do {
                try chunk.visit(&adder)
            } catch {
                reject(chunk.run, chunk: chunk.id, reason: "\(chunk.id): \(error)")
                return
            }
        }
        let result = TaskResultFrame(
            run: task.run, taskID: task.taskID, sampleCount: UInt64(adder.eep.sampleCount),
            logEEPSum: adder.eep.logEEPSum, hits: UInt64(adder.eep.hits))
        try producer.send([OutgoingRecord(topic: topics.runs, key: task.run, value: result.encoded())])
    }

    /// The task's conditional, assembled from its parts (cached: a run's tasks share it).
    private func conditional(for task: TaskFrame) throws -> ConditionalTable {
        if let cached = state.withLock({ $0.conditionals[task.run] }), cached.locations == task.conditional {
            return cached.table
        }
        let messages = try fetcher.fetch(
            topic: topics.conditionals, locations: task.conditional.map { ($0.partition, $0.offset) })
        var values: [Double] = []
        var shape: (targetClasses: Int, sourceClasses: Int)?
        for message in messages {
            guard case .conditional(let part) = try Frame.decode(message.value), part.run == task.run,
                  part.part.partCount == UInt32(messages.count),
                  shape.map({ $0 == (part.targetClasses, part.sourceClasses) }) ?? true
            else {
                throw TaskError("the conditional parts of run \(task.run) are missing, foreign or inconsistent")
            }
            if shape == nil {
                shape = (part.targetClasses, part.sourceClasses)
                values = Array(repeating: 0, count: part.targetClasses * part.sourceClasses)
            }
            values.replaceSubrange(part.part.cellStart..<(part.part.cellStart + part.part.cellCount), with: part.values)
        }
        guard let shape else { throw TaskError("task \(task.taskID) names no conditional") }
        let table = try ConditionalTable(
            targetClasses: shape.targetClasses, sourceClasses: shape.sourceClasses, probabilities: values)
        state.withLock { state in
            // A few runs at a time are in pass 2; keep their conditionals, not every run's.
            if state.conditionals.count >= 8 { state.conditionals.removeAll() }
            state.conditionals[task.run] = (task.conditional, table)
        }
        return table
    }

    private func reject(_ run: RunIdentity, chunk: ChunkID, reason: String) {
        logger.warning("chunk rejected; its run will fail", metadata: ["run": "\(run.id)", "reason": "\(reason)"])
        sendUntilDelivered(
            [OutgoingRecord(topic: topics.runs, key: run.id, value: ChunkRejectedFrame(run: run, chunk: chunk, reason: reason).encoded())],
            what: "rejection")
        state.withLock { $0.rejections += 1 }
        metrics.chunksRejected.increment()
    }

    private func deadLetter(_ message: KafkaMessage, reason: String) {
        logger.warning("dead letter", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "reason": "\(reason)",
        ])
        sendUntilDelivered([DeadLetter.record(for: message, reason: reason, topic: topics.deadLetter)], what: "dead letter")
        state.withLock { $0.deadLetters += 1 }
        metrics.deadLetters.increment()
    }

    /// Sends, retrying while the broker is unreachable: nothing may be committed before these
    /// records are delivered, and giving up would lose them.
    private func sendUntilDelivered(_ records: [OutgoingRecord], what: String) {
        var attempt = 0
        while true {
            do {
                try producer.send(records)
                return
            } catch {
                attempt += 1
                logger.warning("sending \(what) failed; retrying", metadata: ["attempt": "\(attempt)", "error": "\(error)"])
            }
        }
    }
}

/// CPU time of the calling thread, in seconds.
private func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}

/// A task that cannot be done as issued.
struct TaskError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
