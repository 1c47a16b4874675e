import Foundation
import Kafka
import LEEPCore
import WireFormat

/// The latest score record of every run on the score topic, as a subscriber sees it.
public struct ScoreBoard: Sendable {
    /// Latest record per run id, in order of first appearance.
    public private(set) var latest: [String: ScoreRecord] = [:]
    private var order: [String] = []
    /// Runs whose latest record is final, per data set: kept as records come, so that a reader
    /// waiting for N finals does not count a long topic's runs again at every record.
    private var finals: [String: Int] = [:]

    /// An empty board.
    public init() {}

    /// Records a score record; returns false when it is not a valid score record.
    @discardableResult
    public mutating func apply(_ value: UnsafeRawBufferPointer) -> ScoreRecord? {
        guard let record = try? JSONDecoder().decode(ScoreRecord.self, from: Data(value)) else { return nil }
        if latest[record.run] == nil { order.append(record.run) }
        // An outcome is final: a late record (an aggregator replaying) does not undo it.
        if let existing = latest[record.run], existing.status == .final || existing.status == .failed,
           record.status != .final && record.status != .failed
        { return record }
        if latest[record.run]?.status == .final { finals[latest[record.run]!.dataset, default: 0] -= 1 }
        if record.status == .final { finals[record.dataset, default: 0] += 1 }
        latest[record.run] = record
        return record
    }

    /// Runs whose latest record is `final`, of one data set or of all.
    public func finalCount(dataset: String? = nil) -> Int {
        dataset.map { finals[$0] ?? 0 } ?? finals.values.reduce(0, +)
    }

    /// The runs' latest records, optionally of one data set, in order of first appearance.
    public func records(dataset: String? = nil) -> [ScoreRecord] {
        order.compactMap { latest[$0] }.filter { dataset == nil || $0.dataset == dataset }
    }

    /// The verdicts on LEEP of one data set's runs: run id → the model that certainly beats it
    /// (the one with the highest certified lower bound, when that is above the run's certified
    /// upper bound; docs/transferability.md, "Verdicts"). A model's latest run stands for it.
    public func verdicts(dataset: String) -> [String: String] {
        var latestOfModel: [String: ScoreRecord] = [:]
        for record in records(dataset: dataset) { latestOfModel[record.model] = record }
        let bounded = latestOfModel.values.compactMap { record in record.certifiedLEEPBounds.map { (record, $0) } }
        var verdicts: [String: String] = [:]
        for (record, bounds) in bounded {
            // The highest lower bound; of equal ones, the first model by name.
            let leader = bounded.filter { $0.0.model != record.model }
                .min { $0.1.lower != $1.1.lower ? $0.1.lower > $1.1.lower : $0.0.model < $1.0.model }
            if let (rival, rivalBounds) = leader, rivalBounds.lower > bounds.upper { verdicts[record.run] = rival.model }
        }
        return verdicts
    }

    /// The runs' latest records with their verdicts (`dominatedBy`), optionally of one data set.
    public func judgedRecords(dataset: String? = nil) -> [ScoreRecord] {
        let records = records(dataset: dataset)
        let datasets = Set(records.map(\.dataset))
        let verdicts = datasets.reduce(into: [String: String]()) { all, name in
            all.merge(self.verdicts(dataset: name)) { first, _ in first }
        }
        return records.map { record in
            var judged = record
            if let model = verdicts[record.run] { judged.dominatedBy = model }
            return judged
        }
    }

    /// The score a leaderboard ranks by (higher is better for each): "leep", "nce" or any feature
    /// metric's score (`ScoreRecord.rankableScores`).
    public struct Ranking: Sendable, Equatable {
        /// The score's key in the records.
        public let key: String

        /// LEEP, the default.
        public static let leep = Ranking(validKey: "leep")

        /// A ranking by `key`; nil when no record can carry such a score.
        public init?(key: String) {
            guard ScoreRecord.rankableScores.contains(key) else { return nil }
            self.key = key
        }

        private init(validKey: String) { key = validKey }

        func value(of record: ScoreRecord) -> Double? { record.score(key) }
    }

    /// A leaderboard per data set: final runs ranked by `ranking` (LEEP by default; runs
    /// without that score last), then the runs still going or failed. Each feature metric gets a
    /// column when a run of the data set has it (blank where a run has none, "undef" where it is
    /// undefined for the run's data); runs that sent features only have no LEEP or NCE.
    public func leaderboard(dataset: String? = nil, rankedBy ranking: Ranking = .leep) -> String {
        let records = judgedRecords(dataset: dataset)
        let datasets = records.map(\.dataset).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
        var lines: [String] = []
        for name in datasets {
            let runs = records.filter { $0.dataset == name }
            let ranked = runs.filter { $0.status == .final }
                .sorted { (ranking.value(of: $0) ?? -.infinity) > (ranking.value(of: $1) ?? -.infinity) }
            let featureKeys = FeatureMetrics.scoreKeys.filter { key in ranked.contains { $0.features?.values[key] != nil } }
            let hasFeatures = ranked.contains { $0.featureWidth != nil }
            lines.append("data set \(name)" + (ranking == .leep ? "" : " (ranked by \(ranking.key))"))
            lines.append(pad("rank", 4) + "  " + pad("model", 28, left: true) + pad("LEEP", 10) + pad("NCE", 10)
                + pad("EEP acc", 9) + featureKeys.map { pad($0, 15) }.joined() + (hasFeatures ? pad("D", 6) : "")
                + pad("n", 9) + pad("Z", 7) + pad("Y", 6) + "  run")
            for (rank, record) in ranked.enumerated() {
                let featureColumns = featureKeys.map { key in
                    pad(record.features?.values[key].map { $0.map { format($0) } ?? "undef" } ?? "", 15)
                }
                lines.append(pad("\(rank + 1)", 4) + "  " + pad(record.model, 28, left: true)
                    + pad(format(record.leep), 10) + pad(format(record.nce), 10) + pad(format(record.eepAccuracy, digits: 3), 9)
                    + featureColumns.joined() + (hasFeatures ? pad(record.featureWidth.map(String.init) ?? "", 6) : "")
                    + pad(record.n.map(String.init) ?? "", 9) + pad(record.sourceClasses.map(String.init) ?? "", 7)
                    + pad(record.targetClasses.map(String.init) ?? "", 6) + "  " + record.run
                    + (record.dominatedBy.map { "  (cannot win: below \($0))" } ?? ""))
            }
            for record in runs where record.status != .final {
                lines.append(pad("-", 4) + "  " + pad(record.model, 28, left: true) + "  " + describe(record) + "  " + record.run
                    + (record.dominatedBy.map { "  (cannot win: below \($0))" } ?? ""))
            }
            lines.append("")
        }
        return lines.joined(separator: "\n")
    }

    /// One line for one record, for followers that are not terminals: status, model, data set,
    /// and the scores or the progress.
    public func line(for record: ScoreRecord) -> String {
        let detail = record.status == .final
            ? (record.leep == nil ? "" : "LEEP \(format(record.leep))  NCE \(format(record.nce))  ")
                + (record.eepAccuracy.map { "EEP accuracy " + String(format: "%.3f", $0) + "  " } ?? "")
                + FeatureMetrics.scoreKeys.compactMap { key in
                    record.features?.values[key].map { "\(key) " + ($0.map { format($0) } ?? "undefined") + "  " }
                }.joined()
                + "n \(record.n ?? 0)"
            : describe(record)
        return "\(record.status.rawValue) \(record.model) on \(record.dataset): \(detail)  (\(record.run))"
    }

    /// "12 runs: 9 final, 2 running, 1 failed" — of one data set, or of all.
    public func summary(dataset: String? = nil) -> String {
        let records = records(dataset: dataset)
        let counts = Dictionary(grouping: records, by: \.status).mapValues(\.count)
        let parts = [
            (ScoreRecord.Status.final, "final"), (.bracketed, "bracketed"), (.streaming, "streaming"), (.progress, "running"),
            (.failed, "failed"),
            (.incomplete, "incomplete"),
        ]
            .compactMap { status, name in counts[status].map { "\($0) \(name)" } }
        return "\(records.count) runs" + (parts.isEmpty ? "" : ": " + parts.joined(separator: ", "))
    }

    private func describe(_ record: ScoreRecord) -> String {
        switch record.status {
        case .progress:
            let chunks = "\(record.chunksAccepted ?? 0)/\(record.chunksExpected.map(String.init) ?? "?") chunks"
            if let pass = record.pass, pass >= 2 {
                return "pass \(pass): \(chunks), \(record.tasksDone ?? 0)/\(record.tasksExpected ?? 0) tasks" + bracket(of: record)
            }
            return "pass 1: " + chunks
        case .bracketed: return "pass 1 merged:" + bracket(of: record)
        case .streaming:
            let estimate = record.leepEstimate.map {
                " estimate \(format($0)) [\(format(record.leepEstimateLow)), \(format(record.leepEstimateHigh))]"
            } ?? ""
            return "pass 1: \(record.rowsSeen ?? 0) rows, \(record.chunksAccepted ?? 0)/\(record.chunksExpected.map(String.init) ?? "?") chunks" + estimate
        case .failed: return "FAILED: \(record.reason ?? "")"
        case .incomplete: return "INCOMPLETE: \(record.reason ?? "")"
        case .final: return "final"
        }
    }

    /// " LEEP in [lower, upper]", or nothing before pass 1 is merged.
    private func bracket(of record: ScoreRecord) -> String {
        guard let lower = record.leepLower, let upper = record.leepUpper else { return "" }
        return " LEEP in [\(format(lower)), \(format(upper))]"
    }

    private func format(_ value: Double?, digits: Int = 4) -> String {
        value.map { String(format: "%.\(digits)f", $0) } ?? ""
    }

    private func pad(_ text: String, _ width: Int, left: Bool = false) -> String {
        let padding = String(repeating: " ", count: max(0, width - text.count))
        return left ? text + padding : padding + text
    }
}

/// Reads the score topic from its beginning into a `ScoreBoard`.
public struct ScoreReader: Sendable {
    let reader: KafkaTopicReader

    /// Opens the score topic of `topics`.
    public init(configuration: KafkaConfiguration, topics: Topics) throws(KafkaError) {
        reader = try KafkaTopicReader(configuration: configuration, topic: topics.scores)
    }

    /// Reads into `board` until `done` says so, the topic has been quiet for `idle` (if
    /// given), or `deadline` passes; calls `onRecord` with each record and the board after it,
    /// and `onQuiet` with the board whenever a poll of 100 ms brings nothing. Returns false on
    /// the deadline.
    public func read(
        into board: inout ScoreBoard, idle: Duration?, deadline: ContinuousClock.Instant?,
        shutdown: ShutdownSignal, done: (ScoreBoard) -> Bool, onRecord: (ScoreRecord, ScoreBoard) -> Void = { _, _ in },
        onQuiet: (ScoreBoard) -> Void = { _ in }
    ) -> Bool {
        var lastRecord = ContinuousClock.now
        while !shutdown.isTriggered {
            if done(board) { return true }
            if let deadline, ContinuousClock.now >= deadline { return false }
            if let idle, ContinuousClock.now - lastRecord >= idle { return true }
            guard let message = reader.poll(timeoutMilliseconds: 100) else {
                onQuiet(board)
                continue
            }
            lastRecord = .now
            if let record = board.apply(message.value) { onRecord(record, board) }
        }
        return true
    }
}
