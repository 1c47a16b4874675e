import Foundation
import Logging
import Pipeline
import Prometheus
import ServiceLifecycle

/// A role's blocking poll loop (`Worker.run`, `Aggregator.run`) as a `Service`: it runs on a
/// thread of its own, and a graceful shutdown of its group triggers its `ShutdownSignal`, so it
/// finishes the way it always does (flush, commit, leave the group).
public struct RoleService: Service {
    private let loop: @Sendable (ShutdownSignal) throws -> Void

    /// Wraps `loop`, which must return once the signal it is given is triggered.
    public init(_ loop: @escaping @Sendable (ShutdownSignal) throws -> Void) {
        self.loop = loop
    }

    public func run() async throws {
        let shutdown = ShutdownSignal()
        try await withGracefulShutdownHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let thread = Thread { [loop] in
                    do {
                        try loop(shutdown)
                        continuation.resume()
                    } catch {
                        continuation.resume(throwing: error)
                    }
                }
                thread.name = "leep-role"
                thread.start()
            }
        } onGracefulShutdown: {
            shutdown.trigger()
        }
    }
}

/// Runs one role until SIGTERM or SIGINT (swift-service-lifecycle), with its operations
/// endpoints when a port is given.
///
/// Shutdown is ordered: the group stops its services in reverse order, so the role stops first
/// (its sums flushed and offsets committed) while `/health` still answers — reporting the role
/// unhealthy once its loop has ended — and the HTTP server stops last. If the role's loop ends
/// on its own (an error), the whole group shuts down and the error is rethrown.
public enum RoleRunner {
    /// Where to serve `/metrics` and `/health`.
    public struct Endpoint: Sendable {
        /// The address to bind, "0.0.0.0" for every interface.
        public var host: String
        /// The TCP port.
        public var port: Int

        /// An endpoint on `host`:`port`.
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
    }

    /// Runs `role` (and the endpoints, if any) until a termination signal or its own end.
    public static func run(
        _ role: RoleService, health: RoleHealth, endpoint: Endpoint?, registry: PrometheusCollectorRegistry?,
        logger: Logger
    ) async throws {
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let endpoint, let registry {
            let application = OperationsServer.application(
                host: endpoint.host, port: endpoint.port, registry: registry, health: health, logger: logger)
            services.append(.init(
                service: application, successTerminationBehavior: .gracefullyShutdownGroup,
                failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(
            service: role, successTerminationBehavior: .gracefullyShutdownGroup,
            failureTerminationBehavior: .gracefullyShutdownGroup))
        let group = ServiceGroup(configuration: .init(
            services: services, gracefulShutdownSignals: [.sigterm, .sigint], cancellationSignals: [], logger: logger))
        try await group.run()
    }
}
