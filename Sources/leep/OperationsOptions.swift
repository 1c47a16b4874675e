import ArgumentParser
import Foundation
import Logging
import Operations
import Pipeline

/// Options of the long-running roles: where to serve `/metrics` and `/health`.
struct OperationsOptions: ParsableArguments {
    @Option(
        name: .long,
        help: ArgumentHelp("Serve Prometheus /metrics and /health on this port (env LEEP_METRICS_PORT; default: off).", valueName: "port"))
    var metricsPort: Int?

    @Option(name: .long, help: ArgumentHelp("The address the metrics server binds.", valueName: "host"))
    var metricsHost: String = "0.0.0.0"

    /// `--metrics-port`, else `LEEP_METRICS_PORT`.
    var port: Int? { metricsPort ?? ProcessInfo.processInfo.environment["LEEP_METRICS_PORT"].flatMap(Int.init) }

    func validate() throws {
        if let port, !(0...65_535).contains(port) {
            throw ValidationError("--metrics-port must be 0 to 65535, got \(port)")
        }
    }

    /// Runs a role built by `makeRole` under swift-service-lifecycle and a `RoleSupervisor`
    /// (which builds it again when its Kafka clients fail), with the endpoints when a port is
    /// set. Metrics are bootstrapped before the role exists, so its metrics land in the
    /// registry that `/metrics` serves.
    func run<Role>(
        role: String, logger: Logger, makeRole: @escaping @Sendable (RoleHealth) throws -> Role,
        loop: @escaping @Sendable (Role, ShutdownSignal) throws -> Void
    ) async throws {
        let registry = port.map { _ in OperationsServer.bootstrapMetrics() }
        let health = RoleHealth(role: role)
        let supervisor = RoleSupervisor(health: health, logger: logger)
        let endpoint = port.map { RoleRunner.Endpoint(host: metricsHost, port: $0) }
        if let endpoint { logger.info("serving /metrics and /health", metadata: ["address": "\(endpoint.host):\(endpoint.port)"]) }
        try await RoleRunner.run(
            RoleService { shutdown in try supervisor.run(until: shutdown, make: { try makeRole(health) }, loop: loop) },
            health: health, endpoint: endpoint, registry: registry, logger: logger)
    }
}
