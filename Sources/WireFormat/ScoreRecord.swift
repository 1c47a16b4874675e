import Foundation
import LEEPCore

/// A record of the score topic: JSON, keyed by the (model, data set) pair, validated by
/// `docs/score-record.schema.json`. A run publishes `progress` records while it streams —
/// `streaming` ones in pass 1 once rows of softmax outputs are merged, with the bracket of the
/// joint so far and an estimate of LEEP — and one `bracketed` record when pass 1 is merged,
/// then exactly one outcome: `final`, `failed` or (issue of stalls) `incomplete`.
public struct ScoreRecord: Codable, Sendable, Equatable {
    /// Where a run stands.
    public enum Status: String, Codable, Sendable {
        case progress, streaming, bracketed, final, failed, incomplete
    }

    /// The source model.
    public var model: String
    /// The target data set.
    public var dataset: String
    /// The run id.
    public var run: String
    /// Where the run stands.
    public var status: Status
    /// LEEP (final only).
    public var leep: Double?
    /// The bounds the joint alone puts on LEEP (`LEEPBracket`), once pass 1 is merged:
    /// `bracketed`, pass-2 `progress` and `final` records of a run with softmax outputs.
    public var leepLower: Double?
    public var leepUpper: Double?
    /// While pass 1 streams: the rows merged so far, and the estimate of the final LEEP from
    /// the rows sampled among them (`LEEPEstimate`) with its 95 % interval and sample size.
    public var rowsSeen: Int?
    public var leepEstimate: Double?
    public var leepEstimateLow: Double?
    public var leepEstimateHigh: Double?
    public var sampledRows: Int?
    /// NCE (final only).
    public var nce: Double?
    /// Accuracy of the expected empirical predictor (final only).
    public var eepAccuracy: Double?
    /// Every feature metric's keys (final only, for a run that sent features): a number, or
    /// null with the reason under `unscored` — flat in the JSON object, one key per metric.
    public var features: FeatureMetricReport?
    /// D, the width of the features (final only, for a run that sent features).
    public var featureWidth: Int?
    /// Samples (final only).
    public var n: Int?
    /// Z, when known.
    public var sourceClasses: Int?
    /// Y, when known.
    public var targetClasses: Int?
    /// 1 or 2 while in progress.
    public var pass: Int?
    /// Chunks whose pass-1 sums are accepted (progress).
    public var chunksAccepted: Int?
    /// Chunks the manifests list, once all are in (progress).
    public var chunksExpected: Int?
    /// Pass-2 tasks done and issued (progress in pass 2).
    public var tasksDone: Int?
    /// Pass-2 tasks issued.
    public var tasksExpected: Int?
    /// Why the run failed or is incomplete.
    public var reason: String?
    /// Pass-1 partials dropped because they overlapped accepted ones (duplicates).
    public var partialsDropped: Int?
    /// Chunks recomputed by repair tasks.
    public var chunksRepaired: Int?
    /// The model of the same data set that certainly beats this one on LEEP (`ScoreBoard`'s
    /// verdicts: its certified lower bound is above this run's certified upper bound).
    public var dominatedBy: String?

    /// A record with only the identity and status set.
    public init(model: String, dataset: String, run: String, status: Status) {
        self.model = model
        self.dataset = dataset
        self.run = run
        self.status = status
    }

    /// The Kafka key: the pair as a compact JSON array, unambiguous whatever the names contain.
    public static func key(model: String, dataset: String) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        // Encoding two strings cannot fail.
        return String(decoding: try! encoder.encode([model, dataset]), as: UTF8.self)
    }

    enum CodingKeys: String, CodingKey {
        case model, dataset, run, status, leep, nce
        case leepLower = "leep_lower"
        case leepUpper = "leep_upper"
        case rowsSeen = "rows_seen"
        case leepEstimate = "leep_estimate"
        case leepEstimateLow = "leep_estimate_low"
        case leepEstimateHigh = "leep_estimate_high"
        case sampledRows = "sampled_rows"
        case eepAccuracy = "eep_accuracy"
        case featureWidth = "feature_width"
        case n
        case sourceClasses = "source_classes"
        case targetClasses = "target_classes"
        case pass
        case chunksAccepted = "chunks_accepted"
        case chunksExpected = "chunks_expected"
        case tasksDone = "tasks_done"
        case tasksExpected = "tasks_expected"
        case reason
        case partialsDropped = "partials_dropped"
        case chunksRepaired = "chunks_repaired"
        case dominatedBy = "dominated_by"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        model = try container.decode(String.self, forKey: .model)
        dataset = try container.decode(String.self, forKey: .dataset)
        run = try container.decode(String.self, forKey: .run)
        status = try container.decode(Status.self, forKey: .status)
        leep = try container.decodeIfPresent(Double.self, forKey: .leep)
        leepLower = try container.decodeIfPresent(Double.self, forKey: .leepLower)
        leepUpper = try container.decodeIfPresent(Double.self, forKey: .leepUpper)
        rowsSeen = try container.decodeIfPresent(Int.self, forKey: .rowsSeen)
        leepEstimate = try container.decodeIfPresent(Double.self, forKey: .leepEstimate)
        leepEstimateLow = try container.decodeIfPresent(Double.self, forKey: .leepEstimateLow)
        leepEstimateHigh = try container.decodeIfPresent(Double.self, forKey: .leepEstimateHigh)
        sampledRows = try container.decodeIfPresent(Int.self, forKey: .sampledRows)
        nce = try container.decodeIfPresent(Double.self, forKey: .nce)
        eepAccuracy = try container.decodeIfPresent(Double.self, forKey: .eepAccuracy)
        featureWidth = try container.decodeIfPresent(Int.self, forKey: .featureWidth)
        n = try container.decodeIfPresent(Int.self, forKey: .n)
        sourceClasses = try container.decodeIfPresent(Int.self, forKey: .sourceClasses)
        targetClasses = try container.decodeIfPresent(Int.self, forKey: .targetClasses)
        pass = try container.decodeIfPresent(Int.self, forKey: .pass)
        chunksAccepted = try container.decodeIfPresent(Int.self, forKey: .chunksAccepted)
        chunksExpected = try container.decodeIfPresent(Int.self, forKey: .chunksExpected)
        tasksDone = try container.decodeIfPresent(Int.self, forKey: .tasksDone)
        tasksExpected = try container.decodeIfPresent(Int.self, forKey: .tasksExpected)
        reason = try container.decodeIfPresent(String.self, forKey: .reason)
        partialsDropped = try container.decodeIfPresent(Int.self, forKey: .partialsDropped)
        chunksRepaired = try container.decodeIfPresent(Int.self, forKey: .chunksRepaired)
        dominatedBy = try container.decodeIfPresent(String.self, forKey: .dominatedBy)
        let features = try FeatureMetricReport(from: decoder)
        self.features = features.isEmpty ? nil : features
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(model, forKey: .model)
        try container.encode(dataset, forKey: .dataset)
        try container.encode(run, forKey: .run)
        try container.encode(status, forKey: .status)
        try container.encodeIfPresent(leep, forKey: .leep)
        try container.encodeIfPresent(leepLower, forKey: .leepLower)
        try container.encodeIfPresent(leepUpper, forKey: .leepUpper)
        try container.encodeIfPresent(rowsSeen, forKey: .rowsSeen)
        try container.encodeIfPresent(leepEstimate, forKey: .leepEstimate)
        try container.encodeIfPresent(leepEstimateLow, forKey: .leepEstimateLow)
        try container.encodeIfPresent(leepEstimateHigh, forKey: .leepEstimateHigh)
        try container.encodeIfPresent(sampledRows, forKey: .sampledRows)
        try container.encodeIfPresent(nce, forKey: .nce)
        try container.encodeIfPresent(eepAccuracy, forKey: .eepAccuracy)
        try container.encodeIfPresent(featureWidth, forKey: .featureWidth)
        try container.encodeIfPresent(n, forKey: .n)
        try container.encodeIfPresent(sourceClasses, forKey: .sourceClasses)
        try container.encodeIfPresent(targetClasses, forKey: .targetClasses)
        try container.encodeIfPresent(pass, forKey: .pass)
        try container.encodeIfPresent(chunksAccepted, forKey: .chunksAccepted)
        try container.encodeIfPresent(chunksExpected, forKey: .chunksExpected)
        try container.encodeIfPresent(tasksDone, forKey: .tasksDone)
        try container.encodeIfPresent(tasksExpected, forKey: .tasksExpected)
        try container.encodeIfPresent(reason, forKey: .reason)
        try container.encodeIfPresent(partialsDropped, forKey: .partialsDropped)
        try container.encodeIfPresent(chunksRepaired, forKey: .chunksRepaired)
        try container.encodeIfPresent(dominatedBy, forKey: .dominatedBy)
        try features?.encode(to: encoder)
    }

    /// Bounds on the run's final LEEP that hold exactly: (LEEP, LEEP) once final, the bracket
    /// once pass 1 is merged (`bracketed`, pass-2 `progress`); nil otherwise.
    public var certifiedLEEPBounds: (lower: Double, upper: Double)? {
        switch status {
        case .final: return leep.map { ($0, $0) }
        case .bracketed, .progress:
            guard let leepLower, let leepUpper else { return nil }
            return (leepLower, leepUpper)
        case .streaming, .failed, .incomplete: return nil  // a streaming bracket is of the rows so far
        }
    }

    /// The value of a score by its key — "leep", "nce", "eep_accuracy" or any feature metric's
    /// (`FeatureMetrics.allKeys`) — when the record has one.
    public func score(_ key: String) -> Double? {
        switch key {
        case "leep": leep
        case "nce": nce
        case "eep_accuracy": eepAccuracy
        default: features?.values[key] ?? nil
        }
    }

    /// Every score a leaderboard can rank by.
    public static var rankableScores: [String] { ["leep", "nce"] + FeatureMetrics.scoreKeys }
}
