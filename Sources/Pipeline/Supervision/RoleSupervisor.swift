import Foundation
import Kafka
import Logging

/// Runs a role (worker or aggregator) and, when its Kafka clients fail, builds it again —
/// after a wait that grows with each failure up to a ceiling (`RecoveryStateMachine`) — rather
/// than exiting or retrying in a tight loop.
///
/// Replacing the role replaces all of its clients: a fenced or fatally failed producer, a
/// consumer whose assignment was lost, clients of a broker that lost its data and came back.
/// What the old role held and had not delivered is lost with it, but its offsets were not
/// committed, so the new role consumes those records again (the at-least-once rule), and an
/// aggregator's successor replays like any new owner. While the role is being replaced,
/// `/health` answers 503 with the reason.
public struct RoleSupervisor: Sendable {
    private let health: RoleHealth
    private let logger: Logger
    private let policy: RecoveryStateMachine.Policy
    private let clock: any WallClock

    /// Supervises a role that reports to `health`.
    public init(health: RoleHealth, logger: Logger, clock: any WallClock = SystemWallClock()) {
        self.init(health: health, logger: logger, policy: .init(), clock: clock)
    }

    init(health: RoleHealth, logger: Logger, policy: RecoveryStateMachine.Policy, clock: any WallClock) {
        self.health = health
        self.logger = logger
        self.policy = policy
        self.clock = clock
    }

    /// Builds the role with `make` and runs `loop` on it until `shutdown` is triggered; builds
    /// it again whenever building or running it throws, unless the error is a configuration a
    /// new client would refuse again (then it is rethrown). `/health` reports stopped at the end.
    public func run<Role>(
        until shutdown: ShutdownSignal, make: () throws -> Role, loop: (Role, ShutdownSignal) throws -> Void
    ) throws {
        var machine = RecoveryStateMachine(policy: policy)
        defer { health.stop() }
        while !shutdown.isTriggered {
            do {
                let role = try make()
                if case .waiting = machine.state { logger.notice("Kafka clients rebuilt; the role runs again") }
                _ = machine.apply(.started(at: clock.now()))
                health.report(nil, from: "clients")
                try loop(role, shutdown)
            } catch {
                if shutdown.isTriggered { throw error }
                let permanent = (error as? KafkaError).map(\.isConfigurationError) ?? true
                switch machine.apply(.failed(reason: "\(error)", permanent: permanent, at: clock.now())) {
                case .giveUp, nil:
                    throw error
                case .rebuild(let delay, let attempt):
                    health.report("rebuilding the Kafka clients after: \(error)", from: "clients")
                    logger.error("the role failed; its Kafka clients are rebuilt", metadata: [
                        "error": "\(error)", "retry_in": "\(delay)", "attempt": "\(attempt)",
                    ])
                    wait(delay, unless: shutdown)
                }
            }
        }
    }

    /// Sleeps for `duration`, waking early when `shutdown` is triggered. Waiting is the
    /// supervisor's work: it counts as rounds, so `/live` stays 200 meanwhile.
    private func wait(_ duration: Duration, unless shutdown: ShutdownSignal) {
        let end = ContinuousClock.now + duration
        while !shutdown.isTriggered, ContinuousClock.now < end {
            health.round()
            Thread.sleep(forTimeInterval: 0.1)
        }
    }
}
