import Kafka
import Metrics
import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Whether a role can do its work, for `/health`: it can while its poll loop has gone round
/// within `staleAfterSeconds`, it has not stopped, and nothing reports a problem — its broker
/// not answering, records it must deliver not going out, its clients being rebuilt after a
/// failure. A supervisor (Kubernetes, systemd) acts on the 503 that anything else gives.
public final class RoleHealth: Sendable {
    /// "worker" or "aggregator".
    public let role: String
    /// How long without a round of the loop before the role counts as stuck.
    public let staleAfterSeconds: Double
    private let lastRound = Atomic<Int64>(RoleHealth.nowNanoseconds())
    private let stopped = Atomic<Bool>(false)
    /// What keeps the role from working, by who reports it ("broker", "delivery", "clients").
    private let problems = Mutex<[String: String]>([:])
    /// `leep_ready{role}`: 1 while `/health` would answer 200, so that an alert sees what a
    /// readiness probe sees. Create the health after bootstrapping metrics.
    private let ready: Gauge

    /// Health of a role that has just started.
    public init(role: String, staleAfterSeconds: Double = 30) {
        self.role = role
        self.staleAfterSeconds = staleAfterSeconds
        ready = Gauge(label: "leep_ready", dimensions: [("role", role)])
        ready.record(0)
    }

    /// Sets `leep_ready` from the current state (after each change, and on the loop's upkeep,
    /// which is when a stalled loop would be noticed).
    func publishReadiness() { ready.record(problem == nil ? 1 : 0) }

    /// The loop went round.
    func round() { lastRound.store(Self.nowNanoseconds(), ordering: .relaxed) }

    /// The role stopped for good.
    public func stop() {
        stopped.store(true, ordering: .relaxed)
        ready.record(0)
    }

    /// `source` reports `problem`, or (nil) that its problem is over. Returns whether that
    /// changed what `source` reports, so callers log changes, not repeats.
    @discardableResult
    func report(_ problem: String?, from source: String) -> Bool {
        let changed = problems.withLock { problems in
            guard problems[source] != problem else { return false }
            problems[source] = problem
            return true
        }
        if changed { publishReadiness() }
        return changed
    }

    /// Seconds since the loop last went round.
    public var secondsSinceLastRound: Double {
        Double(Self.nowNanoseconds() - lastRound.load(ordering: .relaxed)) / 1e9
    }

    /// Why the role is not alive — stopped, or its loop stuck — nil while it is (`/live`). A
    /// role waiting for its broker, or rebuilding its clients, is alive: restarting it would
    /// not help, and a broker outage would restart every pod at once.
    public var deadness: String? {
        if stopped.load(ordering: .relaxed) { return "the role has stopped" }
        let stalled = secondsSinceLastRound
        if stalled >= staleAfterSeconds { return "the poll loop has not gone round for \(Int(stalled)) s" }
        return nil
    }

    /// Why the role cannot do its work, nil when it can (`/health`): not alive, or a problem
    /// reported (its broker does not answer, deliveries fail, its clients are being rebuilt).
    public var problem: String? {
        if let deadness { return deadness }
        return problems.withLock { problems in
            problems.isEmpty ? nil : problems.keys.sorted().map { "\($0): \(problems[$0]!)" }.joined(separator: "; ")
        }
    }

    /// True while the loop runs, went round recently and nothing reports a problem.
    public var isHealthy: Bool { problem == nil }

    private static func nowNanoseconds() -> Int64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec)
    }
}

/// What both roles' poll loops do besides their work: mark a round for `/health`, every
/// `probeInterval` ask the broker for metadata (a role whose broker does not answer is not
/// healthy, even while its loop goes round), and every `lagInterval` report the consumer's lag.
struct LoopUpkeep {
    let health: RoleHealth
    let metrics: ConsumerMetrics
    let lagFrom: KafkaConsumer.LagOrigin
    let logger: Logger
    let lagInterval: Duration = .seconds(10)
    let probeInterval: Duration = .seconds(5)
    private var lastLag: ContinuousClock.Instant?
    private var lastProbe: ContinuousClock.Instant?

    init(health: RoleHealth, topicPrefix: String, lagFrom: KafkaConsumer.LagOrigin, logger: Logger) {
        self.health = health
        self.metrics = ConsumerMetrics(role: health.role, topicPrefix: topicPrefix)
        self.lagFrom = lagFrom
        self.logger = logger
        metrics.up()
    }

    mutating func round(_ consumer: KafkaConsumer) {
        health.round()
        let now = ContinuousClock.now
        if lastProbe.map({ now - $0 >= probeInterval }) ?? true {
            lastProbe = now
            // A short bound: while the broker is away the loop has nothing to do anyway, and
            // when it answers this takes a round trip.
            let failure = consumer.probeBroker(timeoutMilliseconds: 1_000)
            let changed = health.report(failure.map { "no broker answered: \($0)" }, from: "broker")
            health.publishReadiness()
            if changed {
                if let failure {
                    logger.error("the broker does not answer; /health reports 503 until it does", metadata: ["error": "\(failure)"])
                } else {
                    logger.notice("the broker answers again")
                }
            }
        }
        guard lastLag.map({ now - $0 >= lagInterval }) ?? true else { return }
        let lags = (try? consumer.lag(from: lagFrom)) ?? []
        metrics.record(lags)
        // Until the group has assigned partitions there is nothing to report: ask again soon.
        lastLag = lags.isEmpty ? now - lagInterval + .seconds(1) : now
    }
}
