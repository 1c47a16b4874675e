import Dispatch
import Synchronization

/// Runs the computations the runs' machines ask for (`RunComputation`) off the aggregator's
/// loop, at most `width` at once and oldest first, and keeps their values until the loop
/// collects them at the start of a round. No thread waits for work: a drain is started on
/// Dispatch's pool only while computations are pending, and ends when none is.
final class ComputationPool: Sendable {
    /// A computation's value, and whose it is.
    struct Finished: Sendable {
        let partition: Int32
        let run: String
        let kind: RunComputation.Kind
        let value: RunComputation.Value
        /// How long it ran.
        let duration: Duration
    }

    private struct Pending: Sendable {
        let partition: Int32
        let run: String
        let computation: RunComputation
    }

    private struct State {
        /// Queued from `next` on; a taken one is cleared, so a long queue does not keep the
        /// inputs (D² statistics) of the computations already done.
        var pending: [Pending?] = []
        var next = 0
        var draining = 0
        var running = 0
        var finished: [Finished] = []
    }

    let width: Int
    private let state = Mutex(State())
    private let queue = DispatchQueue(label: "leep.aggregator.computations", attributes: .concurrent)

    init(width: Int) {
        precondition(width > 0, "a pool needs a thread")
        self.width = width
    }

    /// Queues `computation` for `run` of `partition`.
    func start(_ computation: RunComputation, run: String, partition: Int32) {
        let drains = state.withLock { state in
            state.pending.append(Pending(partition: partition, run: run, computation: computation))
            guard state.draining < width else { return false }
            state.draining += 1
            return true
        }
        if drains { queue.async { self.drain() } }
    }

    /// The values finished since the last call, in the order they finished.
    func collect() -> [Finished] {
        state.withLock { state in
            defer { state.finished = [] }
            return state.finished
        }
    }

    /// How many computations are queued or running.
    var inFlight: Int { state.withLock { $0.pending.count - $0.next + $0.running } }

    private func drain() {
        while let work = state.withLock({ state -> Pending? in
            guard state.next < state.pending.count else {
                state.pending = []
                state.next = 0
                state.draining -= 1
                return nil
            }
            defer {
                state.pending[state.next] = nil
                state.next += 1
            }
            state.running += 1
            return state.pending[state.next]
        }) {
            let started = ContinuousClock.now
            let value = work.computation()
            let finished = Finished(
                partition: work.partition, run: work.run, kind: work.computation.kind, value: value,
                duration: ContinuousClock.now - started)
            state.withLock { state in
                state.finished.append(finished)
                state.running -= 1
            }
        }
    }
}
