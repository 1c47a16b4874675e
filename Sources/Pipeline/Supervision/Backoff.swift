/// How long to wait before trying again after consecutive failures: `initial`, doubling with
/// each failure, never more than `ceiling`. Pure; the caller sleeps.
struct Backoff: Equatable, Sendable {
    let initial: Duration
    let ceiling: Duration
    /// Failures since the last success.
    private(set) var failures = 0

    init(initial: Duration, ceiling: Duration) {
        self.initial = initial
        self.ceiling = ceiling
    }

    /// Records a failure; returns the wait before the next try.
    mutating func failed() -> Duration {
        failures += 1
        var delay = initial
        for _ in 1..<failures where delay < ceiling { delay *= 2 }
        return min(delay, ceiling)
    }

    /// Records a success; returns how many failures it ends.
    @discardableResult
    mutating func succeeded() -> Int {
        defer { failures = 0 }
        return failures
    }
}
