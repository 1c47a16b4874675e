import Foundation
import Hummingbird
import Logging
import Metrics
import Pipeline
import Prometheus

/// The HTTP endpoints an operator scrapes and probes: `/metrics` (Prometheus text format, every
/// metric the role reports through swift-metrics) and `/health` (200 while the role can work —
/// its poll loop goes round, its broker answers, its records go out — and 503 with the reason
/// otherwise, as a small JSON body either way).
public enum OperationsServer {
    /// Sends this process's swift-metrics to a fresh Prometheus registry and returns it.
    /// Call once per process, before the role creates its metrics.
    public static func bootstrapMetrics() -> PrometheusCollectorRegistry {
        let registry = PrometheusCollectorRegistry()
        MetricsSystem.bootstrap(PrometheusMetricsFactory(registry: registry))
        return registry
    }

    /// An HTTP application serving `/metrics` from `registry` and `/health` from `health`; a
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
        router.get("/health") { _, _ -> Response in
            let problem = health.problem
            let body = HealthReport(
                status: problem == nil ? "ok" : "unhealthy", role: health.role,
                secondsSinceLastPoll: (health.secondsSinceLastRound * 1000).rounded() / 1000, reason: problem)
            let json = (try? JSONEncoder().encode(body)) ?? Data()
            return Response(
                status: problem == nil ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: json)))
        }
        return Application(
            router: router, configuration: .init(address: .hostname(host, port: port), serverName: "leep"),
            logger: logger)
    }
}

/// The body of `/health`.
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
