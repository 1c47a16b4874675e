import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Set by the SIGINT/SIGTERM handler; an atomic store is safe inside a signal handler.
private let terminationRequested = Atomic<Bool>(false)

/// Set once SIGINT or SIGTERM arrives (or `trigger` is called); long-running roles check it
/// between records and stop cleanly: flush, commit, leave the group.
public final class ShutdownSignal: Sendable {
    private let triggered = Atomic<Bool>(false)
    private let watchesSignals: Bool

    /// A signal that only `trigger` sets.
    public init() { watchesSignals = false }

    private init(watchingSignals: Bool) { watchesSignals = watchingSignals }

    /// A signal set by SIGINT and SIGTERM as well as by `trigger`.
    public static func onTerminationSignals() -> ShutdownSignal {
        for number in [SIGINT, SIGTERM] {
            signal(number) { _ in terminationRequested.store(true, ordering: .relaxed) }
        }
        return ShutdownSignal(watchingSignals: true)
    }

    /// Asks the role to stop.
    public func trigger() { triggered.store(true, ordering: .releasing) }

    /// True once stopping was asked for.
    public var isTriggered: Bool {
        triggered.load(ordering: .acquiring) || (watchesSignals && terminationRequested.load(ordering: .relaxed))
    }
}
