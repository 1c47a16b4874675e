import LEEPCore

/// The files one source model is scored from on one target data set (or on one shard of it):
/// the target labels with the model's softmax outputs, its penultimate-layer features, or both —
/// features alone for a model without a classifier head (CLIP or DINOv2 image encoders, for
/// instance), which has no softmax outputs to give.
///
/// Opening checks each file's shape against the labels (and every label, through `LabelFile`);
/// `checkRows` checks every row with the rules of `leep score`, each error naming the file, the
/// row and the problem.
public struct ScoringFiles: Sendable {
    /// The target labels, every one already checked against [0, Y).
    public let labels: LabelFile
    /// The softmax outputs with their labels; nil for features alone.
    public let predictions: PredictionPair?
    /// The features with their labels; nil for softmax outputs alone.
    public let features: FeatureFile?

    /// Opens the softmax outputs at `predictionsPath`, the features at `featuresPath`, or both,
    /// and checks them against `labels`; at least one of the two paths must be given.
    public init(labels: LabelFile, predictionsPath: String?, featuresPath: String?) throws(FileError) {
        precondition(predictionsPath != nil || featuresPath != nil, "a model is scored from softmax outputs, features or both")
        self.labels = labels
        predictions = try predictionsPath.map { path throws(FileError) in try PredictionPair(predictionsPath: path, labels: labels) }
        features = try featuresPath.map { path throws(FileError) in try FeatureFile(path: path, labels: labels) }
    }

    /// n, the rows of every file.
    public var sampleCount: Int { labels.count }
    /// Y, given or the largest label + 1.
    public var targetClasses: Int { labels.targetClasses }
    /// Z, the softmax outputs of a row; 0 for features alone.
    public var sourceClasses: Int { predictions?.sourceClasses ?? 0 }
    /// D, the features of a row; 0 for softmax outputs alone.
    public var featureWidth: Int { features?.width ?? 0 }

    /// The bytes of one row's softmax outputs and features as the files store them (labels
    /// aside): Z × θ's element size + D × the features' element size.
    public var rowBytes: Int {
        (predictions.map { $0.sourceClasses * $0.predictions.dtype.size } ?? 0)
            + (features.map { $0.width * $0.features.dtype.size } ?? 0)
    }

    /// Checks every row, softmax outputs first (finite, non-negative, summing to 1 within
    /// `check`'s tolerance, as `leep score` does), then the features (finite); throws the first
    /// problem in row order as a `FileError` naming the file, the row and the problem.
    public func checkRows(_ check: RowCheck) throws {
        if let predictions {
            var validator = RowValidator(check: check, targetClasses: predictions.targetClasses)
            try predictions.forEachChunk(rowsPerChunk: predictions.defaultRowsPerChunk, &validator)
        }
        try features?.checkFinite()
    }
}

/// Checks every row of softmax outputs without accumulating anything.
struct RowValidator: ChunkVisitor {
    let check: RowCheck
    let targetClasses: Int

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        try check.validate(chunk, targetClasses: targetClasses)
    }
}
