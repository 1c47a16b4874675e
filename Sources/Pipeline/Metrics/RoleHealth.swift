import Kafka
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a role's poll loop is alive, for `/health`: it is while the loop has gone round
/// within `staleAfterSeconds` and has not stopped.
public final class RoleHealth: Sendable {
    /// "worker" or "aggregator".
    public let role: String
    /// How long without a round of the loop before the role counts as stuck.
    public let staleAfterSeconds: Double
    private let lastRound = Atomic<Int64>(RoleHealth.nowNanoseconds())
    private let stopped = Atomic<Bool>(false)

    /// Health of a role that has just started.
    public init(role: String, staleAfterSeconds: Double = 30) {
        self.role = role
        self.staleAfterSeconds = staleAfterSeconds
    }

    /// The loop went round.
    func round() { lastRound.store(Self.nowNanoseconds(), ordering: .relaxed) }

    /// The loop ended.
    func stop() { stopped.store(true, ordering: .relaxed) }

    /// Seconds since the loop last went round.
    public var secondsSinceLastRound: Double {
        Double(Self.nowNanoseconds() - lastRound.load(ordering: .relaxed)) / 1e9
    }

    /// True while the loop runs and went round recently.
    public var isHealthy: Bool {
        !stopped.load(ordering: .relaxed) && secondsSinceLastRound < staleAfterSeconds
    }

    private static func nowNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

/// What both roles' poll loops do besides their work: mark a round for `/health`, and every
/// `lagInterval` report the consumer's lag.
struct LoopUpkeep {
    let health: RoleHealth
    let metrics: ConsumerMetrics
    let lagFrom: KafkaConsumer.LagOrigin
    let lagInterval: Duration = .seconds(10)
    private var lastLag: ContinuousClock.Instant?

    init(health: RoleHealth, topicPrefix: String, lagFrom: KafkaConsumer.LagOrigin) {
        self.health = health
        self.metrics = ConsumerMetrics(role: health.role, topicPrefix: topicPrefix)
        self.lagFrom = lagFrom
        metrics.up()
    }

    mutating func round(_ consumer: KafkaConsumer) {
        health.round()
        let now = ContinuousClock.now
        guard lastLag.map({ now - $0 >= lagInterval }) ?? true else { return }
        let lags = (try? consumer.lag(from: lagFrom)) ?? []
        metrics.record(lags)
        // Until the group has assigned partitions there is nothing to report: ask again soon.
        lastLag = lags.isEmpty ? now - lagInterval + .seconds(1) : now
    }
}
