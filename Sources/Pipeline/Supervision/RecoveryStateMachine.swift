/// The lifecycle of a role's Kafka clients, as `RoleSupervisor` drives it: running, or waiting
/// to build them again after a failure, or given up.
///
/// Pure: events come in with their time, the decision goes out as an action. A failure of a
/// client — a fenced or fatally failed idempotent producer, an assignment lost and not won
/// back, a broker that lost its data — is met by building new clients after a wait that doubles
/// with each failure up to a ceiling; a role that then ran for `stableAfter` starts from the
/// shortest wait again. Only a configuration error, which a new client would repeat, ends it.
struct RecoveryStateMachine: Sendable {
    /// The waits.
    struct Policy: Sendable {
        /// The first wait, and the ceiling of the doubling.
        var initialDelay: Duration = .seconds(1)
        var maxDelay: Duration = .seconds(30)
        /// A role that ran this long before failing failed afresh.
        var stableAfter: Duration = .seconds(60)
    }

    enum State: Equatable {
        /// Building the clients (the first time, or again).
        case starting
        /// The clients were built at `since`; the role runs.
        case running(since: Timestamp)
        /// Waiting until `until` to build the clients again, after a failure for `reason`.
        case waiting(until: Timestamp, reason: String)
        /// Given up, for `reason`.
        case stopped(reason: String)
    }

    enum Event: Equatable {
        /// The clients are built and the role runs.
        case started(at: Timestamp)
        /// The role (or building it) failed; `permanent` when trying again cannot help.
        case failed(reason: String, permanent: Bool, at: Timestamp)
    }

    enum Action: Equatable {
        /// Build the clients again after `delay`; the `attempt`-th try since the role last ran
        /// well.
        case rebuild(after: Duration, attempt: Int)
        /// Stop the role and report `reason`.
        case giveUp(reason: String)
    }

    let policy: Policy
    private(set) var state: State = .starting
    private var backoff: Backoff

    init(policy: Policy = Policy()) {
        self.policy = policy
        backoff = Backoff(initial: policy.initialDelay, ceiling: policy.maxDelay)
    }

    /// Applies `event`; returns what to do, if anything.
    mutating func apply(_ event: Event) -> Action? {
        switch event {
        case .started(let time):
            state = .running(since: time)
            return nil
        case .failed(let reason, true, _):
            state = .stopped(reason: reason)
            return .giveUp(reason: reason)
        case .failed(let reason, false, let time):
            if case .running(let since) = state, time - since >= policy.stableAfter { backoff.succeeded() }
            let delay = backoff.failed()
            state = .waiting(until: time + delay, reason: reason)
            return .rebuild(after: delay, attempt: backoff.failures)
        }
    }
}
