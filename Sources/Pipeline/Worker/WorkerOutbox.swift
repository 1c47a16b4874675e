import Kafka
import Synchronization
import WireFormat

/// What a worker owes the broker before it may commit: pass-1 sums not yet flushed, and records
/// not yet sent (task outputs, rejections, dead letters).
///
/// Everything a consumed record produced is here until it is delivered, and offsets are
/// committed only when nothing is owed — the at-least-once rule. Shared by the poll loop and
/// the rebalance handler (both run on the polling thread; the mutex makes that safe to state,
/// not contended).
final class WorkerOutbox: Sendable {
    private struct State {
        var pass1: Pass1Buffer
        var records: [OutgoingRecord] = []
        var partialsFlushed = 0
        /// Set when the sink failed fatally: records taken for delivery were lost, so nothing
        /// may be committed any more (every later `deliver` throws it).
        var failure: (any Error)?
    }

    private let state: Mutex<State>
    private let sink: any RecordSink
    private let runsTopic: String
    private let metrics: WorkerMetrics
    private let delivery: PersistentDelivery

    init(pass1: Pass1Buffer, sink: any RecordSink, runsTopic: String, metrics: WorkerMetrics, delivery: PersistentDelivery) {
        state = Mutex(State(pass1: pass1))
        self.sink = sink
        self.runsTopic = runsTopic
        self.metrics = metrics
        self.delivery = delivery
    }

    /// Adds a consumed chunk to the pass-1 sums (see `Pass1Buffer.add`).
    func add(_ chunk: ChunkFrame, bytes: Int, now: ContinuousClock.Instant) -> Pass1Buffer.Outcome {
        state.withLock { $0.pass1.add(chunk, bytes: bytes, now: now) }
    }

    /// Queues records for the next delivery.
    func enqueue(_ records: [OutgoingRecord]) {
        state.withLock { $0.records.append(contentsOf: records) }
    }

    /// True when pass-1 sums wait to be flushed.
    var hasPass1Sums: Bool { state.withLock { !$0.pass1.isEmpty } }

    /// Whether the pass-1 sums are due (see `Pass1Buffer.isDue`).
    func pass1IsDue(now: ContinuousClock.Instant, idle: Bool) -> Bool {
        state.withLock { $0.pass1.isDue(now: now, idle: idle) }
    }

    /// Partials flushed so far.
    var partialsFlushed: Int { state.withLock { $0.partialsFlushed } }

    /// Sends the queued records, and the pass-1 sums of every run when `flushingPass1`, as one
    /// batch with one wait for delivery. Returns whether nothing is owed any more, that is
    /// whether the offsets of every record consumed so far may be committed. Retries until the
    /// batch is delivered; throws only when the sink failed fatally, and then what it held is
    /// lost with this outbox, its records uncommitted: the worker that replaces it consumes
    /// them again.
    @discardableResult
    func deliver(flushingPass1: Bool) throws -> Bool {
        let (records, partials, owesNothing, failure) = state.withLock { state in
            if let failure = state.failure { return ([OutgoingRecord](), 0, false, Optional(failure)) }
            var records = state.records
            state.records = []
            var partials = 0
            if flushingPass1 {
                let flushed = state.pass1.flush()
                records += flushed.frames.map { OutgoingRecord(topic: runsTopic, key: $0.run, value: $0.encoded()) }
                records += flushed.samples.map { OutgoingRecord(topic: runsTopic, key: $0.run.id, value: $0.encoded()) }
                partials = flushed.partials
                state.partialsFlushed += partials
            }
            return (records, partials, state.pass1.isEmpty, nil)
        }
        if let failure { throw failure }
        guard !records.isEmpty else { return owesNothing }
        do {
            try delivery.deliver("\(records.count) records") { try sink.deliver(records) }
        } catch {
            state.withLock { $0.failure = error }
            throw error
        }
        metrics.partialsFlushed.increment(by: Int64(partials))
        return owesNothing
    }
}
