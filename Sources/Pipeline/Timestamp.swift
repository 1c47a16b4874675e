#if canImport(Glibc)
import Glibc
#endif

/// A point in wall-clock time, in milliseconds since the Unix epoch: the unit of Kafka record
/// timestamps, so the time of a replayed record and the time of now compare directly.
public struct Timestamp: Comparable, Hashable, Sendable, CustomStringConvertible {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    public var milliseconds: Int64

    /// A timestamp `milliseconds` after the epoch.
    public init(milliseconds: Int64) { self.milliseconds = milliseconds }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.milliseconds < rhs.milliseconds }

    /// The time from `rhs` to `lhs`.
    public static func - (lhs: Timestamp, rhs: Timestamp) -> Duration { .milliseconds(lhs.milliseconds - rhs.milliseconds) }

    /// `duration` later.
    public static func + (lhs: Timestamp, rhs: Duration) -> Timestamp {
        let (seconds, attoseconds) = rhs.components
        return Timestamp(milliseconds: lhs.milliseconds + seconds * 1000 + attoseconds / 1_000_000_000_000_000)
    }

    public var description: String { "\(milliseconds) ms" }
}

/// Where the roles read the time. Injected, so state machines and their tests run on a clock
/// of their own.
public protocol WallClock: Sendable {
    /// The current time.
    func now() -> Timestamp
}

/// The system's real-time clock.
public struct SystemWallClock: WallClock {
    /// The system clock.
    public init() {}

    public func now() -> Timestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Timestamp(milliseconds: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }
}
