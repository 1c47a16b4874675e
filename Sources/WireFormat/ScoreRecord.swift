import Foundation

/// A record of the score topic: JSON, keyed by the (model, data set) pair, validated by
/// `docs/score-record.schema.json`. A run publishes `progress` records while it streams, then
/// exactly one outcome: `final`, `failed` or (issue of stalls) `incomplete`.
public struct ScoreRecord: Codable, Sendable, Equatable {
    /// Where a run stands.
    public enum Status: String, Codable, Sendable {
        case progress, final, failed, incomplete
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
    /// NCE (final only).
    public var nce: Double?
    /// Accuracy of the expected empirical predictor (final only).
    public var eepAccuracy: Double?
    /// LogME (final only, for a run that sent features).
    public var logME: Double?
    /// H-score (final only, for a run that sent features).
    public var hScore: Double?
    /// Shrinkage H-score (final only, for a run that sent features).
    public var shrinkageHScore: Double?
    /// Ledoit–Wolf's shrinkage α of the shrinkage H-score (final only, with features).
    public var ledoitWolfShrinkage: Double?
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
        case eepAccuracy = "eep_accuracy"
        case logME = "logme"
        case hScore = "hscore"
        case shrinkageHScore = "hscore_shrinkage"
        case ledoitWolfShrinkage = "ledoit_wolf_shrinkage"
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
    }
}
