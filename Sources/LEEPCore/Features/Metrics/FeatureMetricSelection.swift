/// The feature metrics a computation scores — every one, or those a user named — and so the
/// statistics it gathers: a statistic no selected metric reads is not computed, and SFDA's two
/// further passes run only when SFDA is selected.
///
/// `leep score --metrics` is the way to time or run one metric alone; the pipeline always scores
/// every metric (`all`), so that every worker of a run gathers the same statistics.
public struct FeatureMetricSelection: Sendable {
    /// The one-pass metrics selected, in `FeatureMetrics.all`'s order.
    public let metrics: [any FeatureMetric]
    /// Whether SFDA (its passes 2 and 3) is selected.
    public let includesSFDA: Bool

    /// Every feature metric.
    public static let all = FeatureMetricSelection(metrics: FeatureMetrics.all, includesSFDA: true)

    private init(metrics: [any FeatureMetric], includesSFDA: Bool) {
        self.metrics = metrics
        self.includesSFDA = includesSFDA
    }

    /// The metrics whose score keys are `keys` (`FeatureMetrics.scoreKeys`); throws naming the
    /// first key that is no metric's.
    public init(keys: [String]) throws(UnknownFeatureMetric) {
        let known = Set(FeatureMetrics.scoreKeys)
        if let unknown = keys.first(where: { !known.contains($0) }) { throw UnknownFeatureMetric(key: unknown) }
        let named = Set(keys)
        self.init(metrics: FeatureMetrics.all.filter { named.contains($0.key) }, includesSFDA: named.contains(SFDA.key))
    }

    /// The score keys selected, in record order.
    public var keys: [String] { metrics.map(\.key) + (includesSFDA ? [SFDA.key] : []) }

    /// The statistics to gather for D features and Y classes: those the selected metrics read,
    /// the per-class scatters only when their memory is bounded for the shape
    /// (`ClassScatters.fits`; TransRate is unscored otherwise), and for SFDA the within-class
    /// scatter — derived from the per-class scatters when those are gathered anyway.
    public func statisticKinds(featureWidth: Int, targetClasses: Int) -> [StatisticKind] {
        var kinds = Set(metrics.flatMap(\.requires))
        if !ClassScatters.fits(featureWidth: featureWidth, targetClasses: targetClasses) { kinds.remove(.classScatters) }
        if includesSFDA, !kinds.contains(.classScatters) { kinds.insert(.withinClassScatter) }
        return kinds.sorted()
    }
}

/// A metric key that names no feature metric.
public struct UnknownFeatureMetric: Error, Sendable, Equatable, CustomStringConvertible {
    /// The key given.
    public let key: String

    /// The error for `key`.
    public init(key: String) { self.key = key }

    public var description: String {
        "no feature metric is called \"\(key)\"; the metrics are \(FeatureMetrics.scoreKeys.joined(separator: ", "))"
    }
}
