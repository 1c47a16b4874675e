import Kafka
import Logging
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
    }

    private let state: Mutex<State>
    private let sink: any RecordSink
    private let runsTopic: String
    private let metrics: WorkerMetrics
    private let logger: Logger

    init(pass1: Pass1Buffer, sink: any RecordSink, runsTopic: String, metrics: WorkerMetrics, logger: Logger) {
        state = Mutex(State(pass1: pass1))
        self.sink = sink
        self.runsTopic = runsTopic
        self.metrics = metrics
        self.logger = logger
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
    /// whether the offsets of every record consumed so far may be committed.
    @discardableResult
    func deliver(flushingPass1: Bool) -> Bool {
        let (records, partials, owesNothing) = state.withLock { state in
            var records = state.records
            state.records = []
            var partials = 0
            if flushingPass1 {
                let flushed = state.pass1.flush()
                records += flushed.frames.map { OutgoingRecord(topic: runsTopic, key: $0.run, value: $0.encoded()) }
                partials = flushed.partials
                state.partialsFlushed += partials
            }
            return (records, partials, state.pass1.isEmpty)
        }
        guard !records.isEmpty else { return owesNothing }
        sendUntilDelivered(records)
        metrics.partialsFlushed.increment(by: Int64(partials))
        return owesNothing
    }

    /// Sends, retrying while the broker is unreachable: nothing may be committed before these
    /// records are delivered, and giving up would lose them. A retry may publish some twice,
    /// which the aggregator's rules make harmless (docs/architecture.md, "Exactly once").
    private func sendUntilDelivered(_ records: [OutgoingRecord]) {
        var attempt = 0
        while true {
            do {
                try sink.deliver(records)
                return
            } catch {
                attempt += 1
                logger.warning("sending \(records.count) records failed; retrying", metadata: [
                    "attempt": "\(attempt)", "error": "\(error)",
                ])
            }
        }
    }
}
