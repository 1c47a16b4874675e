import Foundation
import Kafka
import Logging

/// Sends a batch until it is delivered, waiting longer after each failure (up to a ceiling),
/// for records nothing may be committed before: giving up would lose them. A retry may publish
/// some twice, which the aggregator's rules make harmless (docs/architecture.md, "Exactly once").
///
/// One line is logged when sending starts failing and one when it succeeds again, not one per
/// try; meanwhile `/health` reports the problem. A fatal error is not retried: the client must
/// be replaced (`RoleSupervisor`), so it is thrown. So is a record not acknowledged within the
/// producer's message timeout — librdkafka has retried it all that time, so either the broker
/// is away (and a new client costs nothing) or the producer is wedged in a way librdkafka does
/// not call fatal, as after a broker lost its producer state — and a failure that has lasted
/// `replaceAfter` whatever it is: a new client costs a rejoin, a wedged one the service.
struct PersistentDelivery: Sendable {
    let health: RoleHealth
    let logger: Logger
    var initialDelay: Duration = .milliseconds(100)
    var maxDelay: Duration = .seconds(5)
    var replaceAfter: Duration = .seconds(120)

    /// Calls `send` until it returns; `what` names the records for the log.
    @discardableResult
    func deliver<Result>(_ what: @autoclosure () -> String, _ send: () throws -> Result) throws -> Result {
        var backoff = Backoff(initial: initialDelay, ceiling: maxDelay)
        var failingSince: ContinuousClock.Instant?
        while true {
            do {
                let result = try send()
                let failures = backoff.succeeded()
                if failures > 0 {
                    health.report(nil, from: "delivery")
                    logger.notice("\(what()) delivered again", metadata: ["failed_tries": "\(failures)"])
                }
                return result
            } catch let error as KafkaError where error.isFatal || error.isDeliveryTimeout {
                throw error
            } catch {
                let now = ContinuousClock.now
                if let since = failingSince, now - since >= replaceAfter {
                    throw KafkaError(message: "\(what()) not delivered for \(replaceAfter): \(error)", isFatal: true)
                }
                failingSince = failingSince ?? now
                let delay = backoff.failed()
                if backoff.failures == 1 {
                    health.report("cannot deliver \(what()): \(error)", from: "delivery")
                    logger.warning("sending \(what()) failed; retrying, up to every \(maxDelay), until delivered", metadata: [
                        "error": "\(error)",
                    ])
                }
                Thread.sleep(forTimeInterval: Double(delay.components.seconds) + Double(delay.components.attoseconds) / 1e18)
            }
        }
    }
}
