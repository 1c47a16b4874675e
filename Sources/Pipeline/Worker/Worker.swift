#if canImport(Glibc)
import Glibc
#endif
import Kafka
import LEEPCore
import Logging
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
        /// Flush early once this many chunk bytes are pending (a run's feature statistics count
        /// as their 8·D² bytes).
        public var maxPendingBytes = 256 << 20
        /// Flush early once one partial covers this many chunks: every part of a partial lists
        /// its chunks (16 bytes each), which must leave room for the sums within a message.
        public var maxChunksPerPartial = 4096
        /// The broker's message limit: partials are split to stay under it.
        public var maxMessageBytes = 1_000_000
        /// The acceptance rule for rows.
        public var check = RowCheck()
        /// The share of each chunk's rows sent to the aggregator verbatim, for its estimate of
        /// LEEP while pass 1 streams (docs/transferability.md); 0 sends none.
        public var rowSampleRate = 1.0 / 64
        /// Tasks taken in one round at most; their records are fetched together.
        public var tasksPerRound = 64
        /// Records (chunks, conditional parts) fetched ahead for a round at most: each may be
        /// close to the message limit, so this bounds the memory a round holds.
        public var prefetchRecords = 64

        /// Defaults.
        public init() {}
    }

    private let consumer: KafkaConsumer
    private let outbox: WorkerOutbox
    private let fetcher: KafkaFetcher
    private let topics: Topics
    private let options: Options
    private let metrics = WorkerMetrics()
    private let logger: Logger
    /// What `/health` reports; the worker marks its rounds and its problems there.
    private let health: RoleHealth

    /// Joins `group` and subscribes to the chunks and tasks topics.
    public init(
        configuration: KafkaConfiguration, group: String, topics: Topics, options: Options = Options(), health: RoleHealth,
        logger: Logger
    ) throws(KafkaError) {
        let pass1 = Pass1Buffer(
            policy: .init(
                interval: options.flushInterval, maxPendingBytes: options.maxPendingBytes,
                maxChunksPerPartial: options.maxChunksPerPartial, maxMessageBytes: options.maxMessageBytes,
                rowSampleRate: options.rowSampleRate),
            check: options.check)
        let outbox = WorkerOutbox(
            pass1: pass1, sink: try KafkaProducer(configuration: configuration), runsTopic: topics.runs, metrics: metrics,
            delivery: PersistentDelivery(health: health, logger: logger))
        self.outbox = outbox
        fetcher = try KafkaFetcher(configuration: configuration)
        self.topics = topics
        self.options = options
        self.logger = logger
        self.health = health
        // Workers scale by process: one core each, so pass 2's products stay on this thread.
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
                // A failure here (the assignment was lost: the group moved on without this
                // worker) only means the records are consumed again by their next owner; a
                // fatal one comes back at the loop's next delivery.
                do {
                    try outbox.deliver(flushingPass1: true)
                    try commit()
                } catch {
                    logger.warning("delivering and committing on revoke failed", metadata: ["error": "\(error)"])
                }
                logger.info("partitions revoked", metadata: ["partitions": "\(partitions.count)"])
            } else if case .assigned(let partitions) = rebalance {
                logger.info("partitions assigned", metadata: ["partitions": "\(partitions)"])
            }
        }
        // Tasks do not wait behind the chunks fetched before them: a run in pass 2 waits for its
        // tasks, while chunks only wait to be added to sums.
        consumer.prioritize([topics.tasks])
    }

    /// Processes records until `shutdown` is triggered, then flushes, commits and leaves the
    /// group.
    ///
    /// Each round takes the tasks that are waiting (for at most the flush interval), then one
    /// chunk, and delivers what they produced — with the pass-1 sums when they are due — as one
    /// batch. It commits only when nothing consumed is left undelivered. Throws when a Kafka
    /// client failed fatally: the worker is then to be replaced (`RoleSupervisor`).
    public func run(until shutdown: ShutdownSignal) throws {
        var handler = RecordHandler(
            outbox: outbox, topics: topics, metrics: metrics, logger: logger,
            chunks: CachedChunkSource(
                cache: ChunkCache(capacityBytes: options.chunkCacheBytes), fallback: BrokerRecords(fetcher: fetcher, topics: topics)),
            runner: TaskRunner(check: options.check, maxMessageBytes: options.maxMessageBytes))
        var upkeep = LoopUpkeep(health: health, topicPrefix: topics.prefix, lagFrom: .committed, logger: logger)
        var uncommitted = false
        while !shutdown.isTriggered {
            upkeep.round(consumer)
            // Every task waiting, up to a round's worth: their records are fetched together.
            var tasks: [KafkaMessage] = []
            while tasks.count < options.tasksPerRound, let task = try consumer.pollPriority(timeoutMilliseconds: 0) {
                tasks.append(task)
            }
            handler.handle(tasks: tasks, prefetchingAtMost: options.prefetchRecords)
            let tookTasks = !tasks.isEmpty
            // With sums pending, a short wait: a poll that comes back empty means the stream has
            // paused (often: the producer is done), and the aggregator is waiting for these sums.
            let message = try consumer.poll(timeoutMilliseconds: tookTasks ? 0 : outbox.hasPass1Sums ? 50 : 100)
            if let message { handler.handle(message) }
            let idle = message == nil && !tookTasks
            uncommitted = uncommitted || !idle
            let owesNothing = try outbox.deliver(flushingPass1: outbox.pass1IsDue(now: .now, idle: idle))
            if owesNothing && uncommitted {
                // A commit that fails (the group took the partitions away meanwhile) only means
                // records are consumed again, which the aggregator's rules make harmless.
                do { try consumer.commit() } catch { logger.warning("commit failed", metadata: ["error": "\(error)"]) }
                uncommitted = false
            }
        }
        try outbox.deliver(flushingPass1: true)
        // Failing to commit now only means the next owner consumes these records again.
        do { try consumer.commit() } catch { logger.warning("commit on shutdown failed", metadata: ["error": "\(error)"]) }
        consumer.close()
        logger.info("worker stopped", metadata: handler.statistics.merging(["partials": "\(outbox.partialsFlushed)"]) { $1 })
    }
}

/// What the poll loop does with one record of the chunks or tasks topic, and the state only the
/// loop touches: the chunk cache, the task runner, the counts. Errors never stop the worker:
/// bad records go to the dead-letter topic, bad rows fail their run, and a Kafka error on a
/// task leaves it to be done again.
private struct RecordHandler {
    let outbox: WorkerOutbox
    let topics: Topics
    let metrics: WorkerMetrics
    let logger: Logger
    var chunks: CachedChunkSource<BrokerRecords>
    var runner: TaskRunner
    private var chunksConsumed = 0
    private var tasksDone = 0
    private var deadLetters = 0
    private var rejections = 0
    /// CPU seconds of the polling thread spent on chunks (pass 1) and on tasks (pass 2 and
    /// repairs, fetching included), and the chunk bytes of pass 1: what `bench/` reports.
    private var pass1Seconds = 0.0
    private var taskSeconds = 0.0
    private var pass1Bytes = 0

    init(
        outbox: WorkerOutbox, topics: Topics, metrics: WorkerMetrics, logger: Logger, chunks: CachedChunkSource<BrokerRecords>,
        runner: TaskRunner
    ) {
        self.outbox = outbox
        self.topics = topics
        self.metrics = metrics
        self.logger = logger
        self.chunks = chunks
        self.runner = runner
    }

    var statistics: Logger.Metadata {
        [
            "chunks": "\(chunksConsumed)", "tasks": "\(tasksDone)", "dead_letters": "\(deadLetters)",
            "rejections": "\(rejections)", "cpu_pass1_s": "\(pass1Seconds)", "cpu_tasks_s": "\(taskSeconds)",
            "pass1_bytes": "\(pass1Bytes)", "chunk_cache_hits": "\(chunks.cache.hits)",
            "chunk_cache_misses": "\(chunks.cache.misses)",
        ]
    }

    /// Handles a round's task records: fetches, in one request per topic, the chunks the cache
    /// lacks and the conditionals not kept, then does each task.
    mutating func handle(tasks messages: [KafkaMessage], prefetchingAtMost limit: Int) {
        guard !messages.isEmpty else { return }
        let tasks = messages.compactMap { message -> TaskFrame? in
            if case .task(let task) = try? Frame.decode(message.value) { return task }
            return nil
        }
        let chunkLocations = tasks.flatMap(\.chunks).map(\.location).filter { !chunks.cache.holds($0) }
        let conditionalLocations = tasks.filter { $0.pass.readsSharedTables && !runner.holdsConditional(of: $0) }.flatMap(\.conditional)
        do {
            // Conditionals first: a run's tasks share one, and small runs each need their own.
            let conditionals = Array(conditionalLocations.prefix(limit))
            try chunks.fallback.prefetch(
                chunks: Array(chunkLocations.prefix(limit - conditionals.count)), conditionals: conditionals)
        } catch {
            // Each task then fetches what it needs itself, and fails on its own if it must.
            logger.warning("prefetching the records of \(tasks.count) tasks failed", metadata: ["error": "\(error)"])
        }
        for message in messages { handle(message) }
        chunks.fallback.dropPrefetched()
    }

    mutating func handle(_ message: KafkaMessage) {
        let frame: Frame
        switch DeadLetter.frame(of: message) {
        case .success(let decoded): frame = decoded
        case .failure(let refusal): return deadLetter(message, reason: refusal.reason)
        }
        let isChunk = message.topic == topics.chunks
        (isChunk ? metrics.chunksConsumed : metrics.tasksConsumed).increment()
        (isChunk ? metrics.chunkBytes : metrics.taskBytes).increment(by: Int64(message.value.count))
        switch (isChunk, frame) {
        case (true, .chunk(let chunk)):
            accumulate(chunk, from: message)
        case (false, .task(let task)):
            perform(task)
        default:
            deadLetter(message, reason: "a \(frame.kindName) frame does not belong on \(message.topic)")
        }
    }

    /// Adds the chunk to its run's pass-1 sums and keeps it for pass 2.
    private mutating func accumulate(_ chunk: ChunkFrame, from message: KafkaMessage) {
        let started = threadCPUSeconds()
        let outcome = outbox.add(chunk, bytes: message.value.count, now: .now)
        chunksConsumed += 1
        pass1Seconds += threadCPUSeconds() - started
        pass1Bytes += message.value.count
        switch outcome {
        case .added:
            chunks.cache.insert(chunk, at: RecordLocation(partition: message.partition, offset: message.offset), bytes: message.value.count)
            metrics.cacheBytes.record(chunks.cache.bytes)
        case .duplicate:
            break
        case .rejected(let reason):
            // The record is well formed but cannot be scored: its run fails, and the record
            // itself goes to the dead-letter topic with the reason, like a malformed one.
            reject(ChunkRejectedFrame(run: chunk.run, chunk: chunk.id, reason: reason))
            deadLetter(message, reason: reason)
        }
    }

    private mutating func perform(_ task: TaskFrame) {
        let started = threadCPUSeconds()
        let (hits, misses) = (chunks.cache.hits, chunks.cache.misses)
        let output: TaskRunner.Output
        do {
            // The conditional's parts come from the broker, like the chunks the cache lacks.
            var conditionals = chunks.fallback
            output = try runner.run(task, chunks: &chunks, conditionals: &conditionals)
        } catch {
            logger.error("task failed; it stays uncommitted and will be retried", metadata: [
                "run": "\(task.run)", "task": "\(task.taskID)", "error": "\(error)",
            ])
            return
        }
        metrics.cacheHits.increment(by: Int64(chunks.cache.hits - hits))
        metrics.cacheMisses.increment(by: Int64(chunks.cache.misses - misses))
        metrics.cacheBytes.record(chunks.cache.bytes)
        switch output {
        case .partial(let frames):
            outbox.enqueue(frames.map { OutgoingRecord(topic: topics.runs, key: task.run, value: $0.encoded()) })
        case .result(let parts):
            outbox.enqueue(parts.map { OutgoingRecord(topic: topics.runs, key: task.run, value: $0.encoded()) })
        case .rejection(let rejection):
            reject(rejection)
        }
        tasksDone += 1
        taskSeconds += threadCPUSeconds() - started
        let pass = switch task.pass {
        case .repair: "repair"
        case .eep: "eep"
        case .eepWithAccuracy: "eep_accuracy"
        case .sfdaMix: "sfda_mix"
        case .sfdaScore: "sfda_score"
        }
        metrics.taskDone(pass)
    }

    private mutating func reject(_ rejection: ChunkRejectedFrame) {
        logger.warning("chunk rejected; its run will fail", metadata: ["run": "\(rejection.run.id)", "reason": "\(rejection.reason)"])
        outbox.enqueue([OutgoingRecord(topic: topics.runs, key: rejection.run.id, value: rejection.encoded())])
        rejections += 1
        metrics.chunksRejected.increment()
    }

    private mutating func deadLetter(_ message: KafkaMessage, reason: String) {
        logger.warning("dead letter", metadata: [
            "topic": "\(message.topic)", "partition": "\(message.partition)", "offset": "\(message.offset)", "reason": "\(reason)",
        ])
        outbox.enqueue([DeadLetter.record(for: message, reason: reason, topic: topics.deadLetter)])
        deadLetters += 1
        metrics.deadLetters.increment()
    }
}

/// CPU time of the calling thread, in seconds.
private func threadCPUSeconds() -> Double {
    var time = timespec()
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
    return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
}
