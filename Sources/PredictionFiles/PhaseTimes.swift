import Foundation

/// Where a `leep score` run spends its time, phase by phase (`leep score --phase-times`):
/// opening the files and checking the labels, pass 1, the conditional, pass 2, the features,
/// the output. Process start and exit are what a whole command's wall time has beyond them.
public struct PhaseTimes: Sendable {
    /// Each phase's name and seconds, in the order they ran.
    public private(set) var phases: [(name: String, seconds: Double)] = []
    private var lapStarted: ContinuousClock.Instant

    /// Starts timing the first phase now.
    public init() { lapStarted = .now }

    /// Ends the current phase as `name` and starts the next.
    public mutating func lap(_ name: String) {
        let now = ContinuousClock.now
        let elapsed = now - lapStarted
        phases.append((name, Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18))
        lapStarted = now
    }

    /// One line per phase, "phase <name> <seconds>", for standard error.
    public var report: String {
        phases.map { "phase \($0.name) \(String(format: "%.6f", $0.seconds))" }.joined(separator: "\n")
    }
}
