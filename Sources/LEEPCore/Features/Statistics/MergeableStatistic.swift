/// A sufficient statistic of a run's feature rows and labels that merges exactly: the seam every
/// feature metric's input goes through.
///
/// A statistic starts empty for a shape (D features, Y target classes), adds chunks of rows,
/// merges with the same statistic of other rows (associative and commutative, up to rounding),
/// widens to a larger Y (shards may know fewer classes), and travels in a partial frame as one
/// section of float64 values — its `kind`'s code — beside the partial's sample count. Adding a
/// statistic is one type conforming to this protocol and one case of `StatisticKind`.
public protocol MergeableStatistic: Sendable, Equatable {
    /// Which statistic this is: its section in a partial frame.
    static var kind: StatisticKind { get }
    /// Empty statistics for D features and Y target classes.
    init(featureWidth: Int, targetClasses: Int)
    /// Reads statistics back from `flattened`, refusing what no honest `flattened` can be.
    init(flattened: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int) throws(FeatureStatisticsError)
    /// D.
    var featureWidth: Int { get }
    /// Y.
    var targetClasses: Int { get }
    /// n.
    var sampleCount: Int { get }
    /// Adds every row of a chunk that `FeatureChunk.validate` accepted for this D and Y.
    mutating func addValidated(_ chunk: FeatureChunk)
    /// Adds the statistics of other rows of the same run (a smaller Y is widened first).
    mutating func merge(_ other: Self) throws(FeatureWidthMismatch)
    /// The same statistics for a larger Y: the new classes have no samples.
    func widened(toTargetClasses: Int) -> Self
    /// The statistics as one float64 vector (n travels beside it).
    var flattened: [Double] { get }
    /// How many values `flattened` holds for Y classes and D features.
    static func flattenedCount(targetClasses: Int, featureWidth: Int) -> Int
}

extension MergeableStatistic {
    /// Adds every row of `chunk`, or none of them: the first bad row is thrown with the
    /// statistics unchanged.
    public mutating func add(_ chunk: FeatureChunk) throws(FeatureAddError) {
        try chunk.validate(featureWidth: featureWidth, targetClasses: targetClasses)
        addValidated(chunk)
    }

    /// Bytes of memory the statistics hold, about: what a worker counts toward its flush threshold.
    public var byteCount: Int { 8 * Self.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth) }

    /// What every `merge` starts with: checks that `other` has this D, widens this statistic and
    /// `other` to the larger Y, and returns `other` widened.
    mutating func aligned(with other: Self) throws(FeatureWidthMismatch) -> Self {
        guard other.featureWidth == featureWidth else {
            throw FeatureWidthMismatch(expected: featureWidth, actual: other.featureWidth)
        }
        let other = other.widened(toTargetClasses: max(targetClasses, other.targetClasses))
        self = widened(toTargetClasses: other.targetClasses)
        return other
    }

    /// What every flat-form `init` starts with: a reader of `values` checked for this statistic's
    /// length and shape (`FlatStatisticReader`).
    static func flatReader(
        _ values: [Double], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) -> FlatStatisticReader {
        try FlatStatisticReader(
            values, expected: flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth),
            sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
    }

    /// `merge` through an existential, for `FeatureStatisticSet`: `other` is always of this type.
    mutating func merge(erased other: any MergeableStatistic) throws(FeatureWidthMismatch) {
        try merge(other as! Self)
    }

    /// `widened` through an existential.
    func widened(erasedTo targetClasses: Int) -> any MergeableStatistic {
        widened(toTargetClasses: targetClasses)
    }

    /// Equality through existentials.
    func isEqual(to other: any MergeableStatistic) -> Bool {
        (other as? Self) == self
    }
}

/// Which mergeable statistic a section of a partial frame carries; the raw value is the
/// section's code (0 is the joint cells of LEEP and NCE).
public enum StatisticKind: UInt8, Sendable, CaseIterable, Comparable, CustomStringConvertible {
    /// n, μ, the centred M2, V3, M4, per-class counts and means (`FeatureStatistics`): LogME,
    /// the H-scores, SFDA's fits.
    case moments = 1
    /// Per-class counts, means and per-feature centred sums of squares (`ClassVariances`): GBC.
    case classVariances = 2
    /// Per-class counts, means and centred D×D scatter matrices (`ClassScatters`): TransRate.
    case classScatters = 3
    /// Per-class counts and means and the pooled within-class scatter (`WithinClassScatter`):
    /// SFDA's fits.
    case withinClassScatter = 4

    /// The type that implements it.
    public var statisticType: any MergeableStatistic.Type {
        switch self {
        case .moments: FeatureStatistics.self
        case .classVariances: ClassVariances.self
        case .classScatters: ClassScatters.self
        case .withinClassScatter: WithinClassScatter.self
        }
    }

    public static func < (lhs: Self, rhs: Self) -> Bool { lhs.rawValue < rhs.rawValue }

    public var description: String {
        switch self {
        case .moments: "feature moments"
        case .classVariances: "per-class variances"
        case .classScatters: "per-class scatter matrices"
        case .withinClassScatter: "within-class scatter"
        }
    }
}
