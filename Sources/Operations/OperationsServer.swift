import Foundation
import Hummingbird
import Logging
import Metrics
import Pipeline
import Prometheus

/// The HTTP endpoints an operator scrapes and probes: `/metrics` (Prometheus text format, every
/// metric the role reports through swift-metrics), `/health` (200 while the role can work —
/// its poll loop goes round, its broker answers, its records go out — and 503 with the reason
/// otherwise: readiness, and what an alert watches) and `/live` (200 while the role is alive
/// even if Kafka is not: liveness, so a broker outage does not restart every pod), each with a
/// small JSON body.
public enum OperationsServer {
    /// Sends this process's swift-metrics to a fresh Prometheus registry and returns it.
    /// Call once per process, before the role creates its metrics.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// An HTTP application serving `/metrics` from `registry` and `/health` and `/live` from `health`; a
    /// `Service`, so it runs and stops with the role in one `ServiceGroup`.
    public static func application(
        host: String, port: Int, registry: PrometheusCollectorRegistry, health: RoleHealth, logger: Logger
    ) -> some ApplicationProtocol {
        let router = Router()
        router.get("/metrics") { _, _ -> Response in
            var bytes: [UInt8] = []
            bytes.reserveCapacity(16 << 10)
            registry.emit(into: &bytes)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4; charset=utf-8"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
        router.get("/health") { _, _ -> Response in report(health, problem: health.problem) }
        router.get("/live") { _, _ -> Response in report(health, problem: health.deadness) }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "leep"),
            logger: logger)
    }
}

/// `/health` or `/live`: 200 with `"status":"ok"` when `problem` is nil, else 503 with it.
private func report(_ health: RoleHealth, problem: String?) -> Response {
    let body = HealthReport(
        status: problem == nil ? "ok" : "unhealthy", role: health.role,
        secondsSinceLastPoll: (health.secondsSinceLastRound * 1000).rounded() / 1000, reason: problem)
    let json = (try? JSONEncoder().encode(body)) ?? Data()
    return Response(
        status: problem == nil ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
        body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
}

/// The body of `/health` and `/live`.
struct HealthReport: Encodable {
    let status: String
    let role: String
    let secondsSinceLastPoll: Double
    /// Why the role is unhealthy (absent when it is not).
    let reason: String?

    enum CodingKeys: String, CodingKey {
        case status, role, reason
        case secondsSinceLastPoll = "seconds_since_last_poll"
    }
}
