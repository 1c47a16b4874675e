import Kafka
import WireFormat

/// The life of one assigned partition of the runs topic, as a pure state machine: events in
/// (a round starts, the barrier is written, a record, time passes, an offset committed, the
/// partition revoked), actions out (write a barrier, forward a run's actions, dead-letter a
/// record, record a run closed, commit an offset, count a metric). No I/O and no clock: time
/// comes with the events and barrier tokens from the injected source, so every transition has
/// a test that needs no broker (`PartitionStateMachineTests`: each transition, and random
/// scripts of events against the invariants).
///
/// A new owner first writes a barrier to the partition (and the closed topic) and reads the
/// closed topic's partition up to it: the ids of the runs closed there. Records read before
/// then wait (`early`). Up to the barrier's return every record is history: folded into its
/// run's machine, which decides nothing, and a malformed one is dead-lettered only once caught
/// up and only if no earlier owner's marker says it did. Once the barrier comes back the
/// partition is live: every open run decides, and the offset committed is the first record of
/// the oldest open run, so a later owner replays no more than the open runs need.
struct PartitionStateMachine {
    /// How far the owner is.
    enum Phase: Equatable {
        /// The barrier is yet to be written (a `writeBarrier` action, then `barrierWritten` in
        /// the same round).
        case assigned
        /// Records before the barrier `token` are history: folded, not acted on.
        case replaying(barrier: UInt64, sentAt: Timestamp)
        /// Caught up: every run decides.
        case live
        /// Given to another owner: nothing more happens here.
        case revoked
    }

    /// A record of the partition, as read.
    struct Record {
        /// Its offset.
        let offset: Int64
        /// When it was appended, if the record says.
        let timestamp: Timestamp?
        /// What it is.
        let content: Content

        enum Content {
            /// A frame that belongs on the runs topic (a run's record or a partition marker).
            case frame(Frame)
            /// A record that does not: its dead letter, and why.
            case refused(deadLetter: OutgoingRecord, reason: String)
        }
    }

    enum Event {
        /// A round of the loop starts: a barrier is due if none was written yet, or if the last
        /// one has not come back within the repair interval (it may have been lost).
        case roundStarted(at: Timestamp)
        /// The barrier `token` was written and the closed topic read up to it: `closedRuns`.
        case barrierWritten(token: UInt64, closedRuns: Set<String>, at: Timestamp)
        /// A record of the partition, in partition order.
        case record(Record, at: Timestamp)
        /// Time passed (the end of a round): every open run's tick, then the commit due.
        case tick(Timestamp, workers: WorkerProgress?)
        /// `offset` was committed for the partition.
        case committed(Int64)
        /// The partition went to another owner.
        case revoked
        /// A computation `run`'s machine asked for gave its value.
        case computed(run: String, RunComputation.Kind, RunComputation.Value, at: Timestamp)
    }

    /// What the owner must do.
    enum Action {
        /// Write the barrier `token` to the partition and to the closed topic's partition, read
        /// the closed topic up to it, then report `barrierWritten`.
        case writeBarrier(token: UInt64)
        /// Carry out what a run's machine decided.
        case forward(run: String, [RunStateMachine.Action])
        /// Publish the dead letter of the record at `offset`, then a marker saying so.
        case deadLetter(OutgoingRecord, offset: Int64, reason: String)
        /// Record on the closed topic a run closed by a marker met in replay (its owner died
        /// before it recorded the run there).
        case recordClosed(run: String)
        /// The partition caught up, with this many open runs.
        case caughtUp(openRuns: Int)
        /// Commit `offset` (then report `committed`).
        case commit(offset: Int64)
        /// Count something.
        case metric(AggregatorMetric)
    }

    /// An open run's machine and where its records start.
    struct OpenRun {
        var machine: RunStateMachine
        let firstOffset: Int64
    }

    let partition: Int32
    private let policy: RunStateMachine.Policy
    private let makeToken: @Sendable () -> UInt64
    private(set) var phase = Phase.assigned
    /// Records read before the closed runs were known, applied once they are.
    private var early: [Record] = []
    /// Ids of the runs closed in this partition: all a closed run leaves behind.
    private(set) var closed: Set<String> = []
    /// Open runs.
    private(set) var runs: [String: OpenRun] = [:]
    /// The offset after the last record read.
    private(set) var nextOffset: Int64?
    /// The offset last committed.
    private(set) var committedOffset: Int64?
    /// Malformed records met while replaying, by offset: dead-lettered once caught up unless a
    /// marker says an earlier owner did it.
    private var deferredDeadLetters: [Int64: (record: OutgoingRecord, reason: String)] = [:]

    /// A partition just assigned; barrier tokens come from `makeToken` (random in the service,
    /// a sequence in tests).
    init(partition: Int32, policy: RunStateMachine.Policy, makeToken: @escaping @Sendable () -> UInt64) {
        self.partition = partition
        self.policy = policy
        self.makeToken = makeToken
    }

    var isLive: Bool { phase == .live }

    /// Where a new owner must start: the first record of the oldest open run, else the offset
    /// after the last record read.
    var resumeOffset: Int64? { runs.values.map(\.firstOffset).min() ?? nextOffset }

    mutating func handle(_ event: Event) -> [Action] {
        if phase == .revoked { return [] }
        switch event {
        case .roundStarted(let now):
            // The owner writes a barrier within the round that asks for it, or the round fails:
            // until one is written, every round asks again, with a new token (a barrier written
            // by a failed round and read back later is then a stale one, and changes nothing).
            let due = switch phase {
            case .assigned: true
            case .replaying(_, let sentAt): now - sentAt >= policy.repairAfter
            case .live, .revoked: false
            }
            return due ? [.writeBarrier(token: makeToken())] : []
        case .barrierWritten(let token, let closedRuns, let now):
            // Asked for while replaying, written once caught up (the owner writes within the
            // round that asks, so only a script can do this): nothing is left to replay.
            guard !isLive else { return [] }
            if phase == .assigned { closed = closedRuns }
            phase = .replaying(barrier: token, sentAt: now)
            let waiting = early
            early = []
            return waiting.flatMap { apply($0, at: now) }
        case .record(let record, let now):
            guard phase != .assigned else {
                early.append(record)
                return []
            }
            return apply(record, at: now)
        case .tick(let now, let workers):
            guard isLive else { return [] }
            var actions: [Action] = []
            for run in runs.keys.sorted() {
                var open = runs[run]!
                actions += forward(open.machine.handle(.tick(now, workers: workers)), of: run)
                actions += settle(open)
            }
            if let offset = resumeOffset, offset != committedOffset { actions.append(.commit(offset: offset)) }
            return actions
        case .committed(let offset):
            committedOffset = offset
            return []
        case .computed(let run, let kind, let value, let now):
            guard var open = runs[run] else { return [] }  // Closed, or another owner's by now.
            return forward(open.machine.handle(.computed(kind, value, at: now)), of: run) + settle(open)
        case .revoked:
            phase = .revoked
            runs = [:]
            early = []
            deferredDeadLetters = [:]
            return []
        }
    }

    /// Applies one record read after the barrier was written.
    private mutating func apply(_ record: Record, at now: Timestamp) -> [Action] {
        nextOffset = record.offset + 1
        let frame: Frame
        switch record.content {
        case .refused(let deadLetter, let reason):
            guard isLive else {
                deferredDeadLetters[record.offset] = (deadLetter, reason)
                return []
            }
            return [.deadLetter(deadLetter, offset: record.offset, reason: reason), .metric(.deadLettered)]
        case .frame(let decoded):
            frame = decoded
        }
        var actions: [Action] = isLive ? [.metric(.recordConsumed)] : []
        if case .partitionMarker(let marker) = frame {
            switch marker.marker {
            case .barrier(let token):
                if case .replaying(token, _) = phase { actions += catchUp(at: now) }
            case .deadLettered(let offset):
                deferredDeadLetters[offset] = nil
            }
            return actions
        }
        guard let run = frame.run, !closed.contains(run) else { return actions }  // Late records of a closed run change nothing.
        var open = runs[run] ?? OpenRun(
            machine: RunStateMachine(run: run, policy: policy, firstSeen: now, isLive: isLive), firstOffset: record.offset)
        // History happened at its own time, and is counted in the metrics when it happened.
        let time = isLive ? now : min(now, record.timestamp ?? now)
        let decided = open.machine.handle(.record(frame, at: time))
        return actions + forward(decided, of: run) + settle(open)
    }

    /// The barrier came back: everything before it is applied, so the runs decide from now on,
    /// and malformed records no earlier owner dead-lettered are dead-lettered now.
    private mutating func catchUp(at now: Timestamp) -> [Action] {
        phase = .live
        var actions: [Action] = []
        for run in runs.keys.sorted() {
            var open = runs[run]!
            actions += forward(open.machine.handle(.caughtUp(at: now)), of: run)
            actions += settle(open)
        }
        for (offset, letter) in deferredDeadLetters.sorted(by: { $0.key < $1.key }) {
            actions += [.deadLetter(letter.record, offset: offset, reason: letter.reason), .metric(.deadLettered)]
        }
        deferredDeadLetters = [:]
        return actions + [.caughtUp(openRuns: runs.count)]
    }

    /// A run's actions: its counts become this partition's metrics, the rest is forwarded.
    private func forward(_ actions: [RunStateMachine.Action], of run: String) -> [Action] {
        var counted: [Action] = []
        var decided: [RunStateMachine.Action] = []
        for action in actions {
            if case .count(let metric) = action { counted.append(.metric(metric)) } else { decided.append(action) }
        }
        return decided.isEmpty ? counted : counted + [.forward(run: run, decided)]
    }

    /// Keeps an open run's machine, or forgets a closed one but for its id.
    private mutating func settle(_ open: OpenRun) -> [Action] {
        let run = open.machine.run
        guard open.machine.isClosed else {
            runs[run] = open
            return []
        }
        runs[run] = nil
        closed.insert(run)
        var actions: [Action] = isLive ? [] : [.recordClosed(run: run)]
        if let identity = open.machine.ledger.identity {
            actions.append(.metric(.forget(run: run, model: identity.model, dataset: identity.dataset)))
        }
        return actions
    }
}
