import Kafka
import Logging
import Synchronization
import Testing

@testable import Pipeline

/// Recovering from failed Kafka clients, without a broker: the waits, the lifecycle's every
/// transition, and the supervisor driving a role that fails.
@Suite struct SupervisionTests {
    static let t0 = Timestamp(milliseconds: 1_000_000)

    @Test func backoffDoublesUpToItsCeilingAndStartsOverAfterASuccess() {
        var backoff = Backoff(initial: .milliseconds(100), ceiling: .seconds(1))
        let delays = (0..<7).map { _ in backoff.failed() }
        #expect(delays == [.milliseconds(100), .milliseconds(200), .milliseconds(400), .milliseconds(800), .seconds(1), .seconds(1), .seconds(1)])
        #expect(backoff.succeeded() == 7)
        #expect(backoff.failed() == .milliseconds(100))
    }

    @Test func aFailureWaitsLongerEachTimeUpToTheCeiling() {
        var machine = RecoveryStateMachine(policy: .init(initialDelay: .seconds(1), maxDelay: .seconds(4), stableAfter: .seconds(60)))
        #expect(machine.state == .starting)
        var delays: [Duration] = []
        for attempt in 1...4 {
            let at = Self.t0 + .seconds(attempt)
            guard case .rebuild(let delay, let number) = machine.apply(.failed(reason: "fenced", permanent: false, at: at)) else {
                Issue.record("no rebuild")
                return
            }
            #expect(number == attempt)
            #expect(machine.state == .waiting(until: at + delay, reason: "fenced"))
            delays.append(delay)
            // Building fails again quickly: the role never ran well in between.
            #expect(machine.apply(.started(at: at + delay)) == nil)
            #expect(machine.state == .running(since: at + delay))
        }
        #expect(delays == [.seconds(1), .seconds(2), .seconds(4), .seconds(4)])
    }

    @Test func aRoleThatRanWellFailsAfresh() {
        var machine = RecoveryStateMachine(policy: .init(initialDelay: .seconds(1), maxDelay: .seconds(30), stableAfter: .seconds(60)))
        _ = machine.apply(.failed(reason: "a", permanent: false, at: Self.t0))
        _ = machine.apply(.failed(reason: "b", permanent: false, at: Self.t0 + .seconds(1)))
        _ = machine.apply(.started(at: Self.t0 + .seconds(3)))
        // Ran 59 s: still the third failure in a row.
        #expect(machine.apply(.failed(reason: "c", permanent: false, at: Self.t0 + .seconds(62))) == .rebuild(after: .seconds(4), attempt: 3))
        _ = machine.apply(.started(at: Self.t0 + .seconds(70)))
        // Ran 60 s: the first failure again.
        #expect(machine.apply(.failed(reason: "d", permanent: false, at: Self.t0 + .seconds(130))) == .rebuild(after: .seconds(1), attempt: 1))
    }

    @Test func aConfigurationErrorGivesUp() {
        var machine = RecoveryStateMachine()
        #expect(machine.apply(.failed(reason: "invalid Kafka property", permanent: true, at: Self.t0)) == .giveUp(reason: "invalid Kafka property"))
        #expect(machine.state == .stopped(reason: "invalid Kafka property"))
    }

    /// A role whose clients fail fatally twice is built three times, `/health` reports the
    /// rebuild meanwhile, and it ends when shutdown is asked for.
    @Test func theSupervisorRebuildsAFailedRoleAndReportsIt() throws {
        let health = RoleHealth(role: "worker")
        let builds = Mutex(0)
        let seenWhileRebuilding = Mutex<String?>(nil)
        let supervisor = RoleSupervisor(
            health: health, logger: Logger(label: "test"),
            policy: .init(initialDelay: .milliseconds(1), maxDelay: .milliseconds(2), stableAfter: .seconds(60)),
            clock: SystemWallClock())
        let shutdown = ShutdownSignal()
        try supervisor.run(
            until: shutdown,
            make: { builds.withLock { $0 += 1; return $0 } },
            loop: { build, shutdown in
                if build == 2 { seenWhileRebuilding.withLock { $0 = health.problem } }
                guard build >= 3 else { throw KafkaError(message: "producer fenced", isFatal: true) }
                #expect(health.isHealthy, "healthy once rebuilt")
                shutdown.trigger()
            })
        #expect(builds.withLock { $0 } == 3)
        // Health is read inside the second build's loop, after `started`: the problem is cleared
        // as soon as the clients are built again.
        #expect(seenWhileRebuilding.withLock { $0 } == nil)
        #expect(!health.isHealthy, "stopped at the end")
    }

    @Test func theSupervisorRethrowsAConfigurationError() {
        let supervisor = RoleSupervisor(health: RoleHealth(role: "worker"), logger: Logger(label: "test"))
        #expect(throws: KafkaError.self) {
            try supervisor.run(
                until: ShutdownSignal(),
                make: { () throws(KafkaError) -> Int in throw KafkaError(message: "invalid Kafka property x", isConfigurationError: true) },
                loop: { _, _ in })
        }
    }

    @Test func healthNamesEachProblemAndChangesAreReportedOnce() {
        let health = RoleHealth(role: "aggregator")
        #expect(health.isHealthy)
        #expect(health.report("no broker answered", from: "broker"))
        #expect(!health.report("no broker answered", from: "broker"), "a repeat is not a change")
        #expect(health.problem == "broker: no broker answered")
        #expect(health.deadness == nil, "alive (/live 200) while its broker is away: restarting it would not help")
        #expect(health.report(nil, from: "broker"))
        #expect(health.isHealthy)
    }
}
