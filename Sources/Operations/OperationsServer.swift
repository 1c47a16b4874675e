import Foundation
import Hummingbird
import Logging
import Metrics
import Pipeline
import Prometheus

/// The HTTP endpoints an operator scrapes and probes: `/metrics` (Prometheus text format, every
/// metric the role reports through swift-metrics) and `/health` (200 while the role's poll loop
/// goes round, 503 otherwise, with a small JSON body either way).
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
            let body = HealthReport(
                status: health.isHealthy ? "ok" : "unhealthy", role: health.role,
                secondsSinceLastPoll: (health.secondsSinceLastRound * 1000).rounded() / 1000)
            let json = (try? JSONEncoder().encode(body)) ?? Data()
            return Response(
                status: health.isHealthy ? .ok : .serviceUnavailable, headers: [.contentType: "application/json"],
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

    enum CodingKeys: String, CodingKey {
        case status, role
        case secondsSinceLastPoll = "seconds_since_last_poll"
    }
}
