import Foundation

/// How far a long command has got, on standard error: a bar redrawn in place on a terminal, a
/// plain line at most every `interval` otherwise (logs and CI keep a readable history).
struct ProgressDisplay {
    /// What is being counted, e.g. "rows".
    let unit: String
    /// The count at 100 %.
    let total: Int
    /// Bytes per counted unit, for the rate.
    let bytesPerUnit: Double
    /// True when standard error is a terminal.
    let isTerminal: Bool
    /// Plain lines at most this often.
    let interval: Duration

    private let started = ContinuousClock.now
    private var lastShown: ContinuousClock.Instant?

    init(unit: String, total: Int, bytesPerUnit: Double, isTerminal: Bool = isatty(STDERR_FILENO) == 1,
         interval: Duration = .seconds(1)) {
        self.unit = unit
        self.total = total
        self.bytesPerUnit = bytesPerUnit
        self.isTerminal = isTerminal
        self.interval = interval
    }

    /// Shows `done` of `total` (redrawn on a terminal at most 10 times a second).
    mutating func update(_ done: Int) {
        let now = ContinuousClock.now
        let every = isTerminal ? .milliseconds(100) : interval
        guard done >= total || lastShown.map({ now - $0 >= every }) ?? true else { return }
        lastShown = now
        let seconds = Self.seconds(now - started)
        if isTerminal {
            write("\r" + Self.bar(done: done, total: total, unit: unit, bytesPerUnit: bytesPerUnit, seconds: seconds) + "\u{1B}[K")
            if done >= total { write("\n") }
        } else {
            write(Self.line(done: done, total: total, unit: unit, bytesPerUnit: bytesPerUnit, seconds: seconds) + "\n")
        }
    }

    /// `[#########...........]  45%  90,000/200,000 rows  120.3 MB/s  ETA 3 s`
    static func bar(done: Int, total: Int, unit: String, bytesPerUnit: Double, seconds: Double, width: Int = 30) -> String {
        let fraction = total > 0 ? min(1, Double(done) / Double(total)) : 1
        let filled = Int((fraction * Double(width)).rounded(.down))
        return "[" + String(repeating: "#", count: filled) + String(repeating: ".", count: width - filled) + "] "
            + String(format: "%3d%%", Int((fraction * 100).rounded(.down))) + "  "
            + "\(grouped(done))/\(grouped(total)) \(unit)  " + rateAndETA(done: done, total: total, bytesPerUnit: bytesPerUnit, seconds: seconds, separator: "  ")
    }

    /// `90000/200000 rows (45%), 120.3 MB/s, ETA 3 s`
    static func line(done: Int, total: Int, unit: String, bytesPerUnit: Double, seconds: Double) -> String {
        let percent = total > 0 ? Int((min(1, Double(done) / Double(total)) * 100).rounded(.down)) : 100
        return "\(done)/\(total) \(unit) (\(percent)%), "
            + rateAndETA(done: done, total: total, bytesPerUnit: bytesPerUnit, seconds: seconds, separator: ", ")
    }

    /// "120.1 MB/s" and "ETA 4 s", joined by `separator`.
    private static func rateAndETA(done: Int, total: Int, bytesPerUnit: Double, seconds: Double, separator: String) -> String {
        guard seconds > 0, done > 0 else { return "-- MB/s" + separator + "ETA --" }
        let rate = Double(done) * bytesPerUnit / seconds / 1e6
        let remaining = Double(total - done) / (Double(done) / seconds)
        return String(format: "%.1f MB/s", rate) + separator + "ETA " + (done >= total ? "0 s" : duration(remaining))
    }

    private static func duration(_ seconds: Double) -> String {
        let whole = Int(seconds.rounded(.up))
        return whole < 60 ? "\(whole) s" : "\(whole / 60) min \(whole % 60) s"
    }

    private static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var result = ""
        for (index, character) in digits.enumerated() {
            if index > 0 && (digits.count - index) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return result
    }

    private static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    private func write(_ text: String) {
        FileHandle.standardError.write(Data(text.utf8))
    }
}
