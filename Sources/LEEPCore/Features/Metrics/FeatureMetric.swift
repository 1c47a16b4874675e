/// A transferability metric of a run's features: scores computed from the run's merged
/// `FeatureStatisticSet` (and the spectral basis the metrics share), or the reason it has none.
///
/// Adding a metric is one type conforming to this protocol, listed in `FeatureMetrics.all`:
/// the score record, `leep score`, `leep scores --rank-by`, the schema and the Python client
/// carry its keys with no code of their own.
public protocol FeatureMetric: Sendable {
    /// The score's key in score records and `leep score --json` ("logme"); what `--rank-by` names.
    var key: String { get }
    /// Other values the metric publishes beside its score (a shrinkage it chose, say).
    var companionKeys: [String] { get }
    /// The metric's name for people ("LogME").
    var title: String { get }
    /// The statistics it reads.
    var requires: [StatisticKind] { get }
    /// The score and companions, keyed; or why the run's data give this metric no value.
    func evaluate(_ inputs: FeatureMetricInputs) -> MetricOutcome
}

extension FeatureMetric {
    public var companionKeys: [String] { [] }
}

/// What a metric makes of a run's statistics.
public enum MetricOutcome: Sendable, Equatable {
    /// The score under the metric's key and its companions under theirs, all finite.
    case scored([String: Double])
    /// The metric is undefined for these data, for this reason.
    case undefined(String)
}

/// The inputs of the feature metrics: the merged statistics, and what several metrics share,
/// computed once on first use (the eigen-decomposition of M2 serves LogME and both H-scores).
public final class FeatureMetricInputs {
    /// The run's merged statistics.
    public let statistics: FeatureStatisticSet

    /// Creates inputs over `statistics`.
    public init(statistics: FeatureStatisticSet) { self.statistics = statistics }

    /// M2's spectrum and the projections of the classes' centred sums and of μ.
    lazy var momentSpectrum: Result<MomentSpectrum, EigenFailure>? = statistics[FeatureStatistics.self].map { moments in
        Result { () throws(EigenFailure) in try MomentSpectrum(moments) }
    }
}

/// The metrics every run with features is scored by, in the order records list them. SFDA is
/// not here: it needs two more passes over the rows (`SFDA`).
public enum FeatureMetrics {
    /// Every one-pass feature metric.
    public static let all: [any FeatureMetric] = [
        LogMEMetric(), HScoreMetric(), ShrinkageHScoreMetric(), GBCMetric(gaussian: .diagonal),
        GBCMetric(gaussian: .spherical), TransRateMetric(),
    ]

    /// Every score a run can be ranked by (`leep scores --rank-by`).
    public static var scoreKeys: [String] { all.map(\.key) + [SFDA.key] }

    /// Every key a feature metric can publish, scores and companions.
    public static var allKeys: [String] {
        all.flatMap { [$0.key] + $0.companionKeys } + [SFDA.key, SFDA.shrinkageKey]
    }
}

/// The feature metrics' values for one run: each metric's keys with a finite value, or null
/// with the reason under `unscored`.
public struct FeatureMetricReport: Sendable, Equatable {
    /// Every key of every metric evaluated: a finite number, or nil when the metric is undefined.
    public var values: [String: Double?]
    /// The reason for each undefined metric, under its score's key.
    public var unscored: [String: String]

    /// Creates a report.
    public init(values: [String: Double?] = [:], unscored: [String: String] = [:]) {
        self.values = values
        self.unscored = unscored
    }

    /// Evaluates `metrics` on `statistics`: each stands alone.
    public init(statistics: FeatureStatisticSet, metrics: [any FeatureMetric] = FeatureMetrics.all) {
        self.init()
        let inputs = FeatureMetricInputs(statistics: statistics)
        for metric in metrics { record(metric.key, companions: metric.companionKeys, title: metric.title, metric.evaluate(inputs)) }
    }

    /// Adds one metric's outcome; a non-finite value makes it undefined.
    public mutating func record(_ key: String, companions: [String], title: String, _ outcome: MetricOutcome) {
        var outcome = outcome
        if case .scored(let scored) = outcome, let bad = ([key] + companions).first(where: { !(scored[$0]?.isFinite ?? false) }) {
            outcome = .undefined("\(bad == key ? title : bad) is \(scored[bad].map { "\($0)" } ?? "missing"), not a finite number")
        }
        switch outcome {
        case .scored(let scored):
            for name in [key] + companions { values[name] = scored[name] }
        case .undefined(let reason):
            for name in [key] + companions { values[name] = .some(nil) }
            unscored[key] = reason
        }
    }
}

/// A metric that reads a statistic the run did not gather says so, naming it.
func missing(_ kind: StatisticKind) -> MetricOutcome {
    .undefined(kind == .classScatters
        ? "the run has no \(kind): Y·D² values exceed the bound of \(ClassScatters.maximumScatterValues) a worker holds"
        : "the run has no \(kind)")
}

extension FeatureMetricReport: Codable {
    /// A metric's key, or "unscored".
    struct Key: CodingKey {
        let stringValue: String
        init(stringValue: String) { self.stringValue = stringValue }
        var intValue: Int? { nil }
        init?(intValue: Int) { nil }
    }

    static let unscoredKey = Key(stringValue: "unscored")

    /// Flat, into the enclosing object: each metric's keys (null when undefined) and, when a
    /// metric is undefined, `"unscored": {key: reason}`.
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        for (name, value) in values.sorted(by: { $0.key < $1.key }) {
            if let value { try container.encode(value, forKey: Key(stringValue: name)) }
            else { try container.encodeNil(forKey: Key(stringValue: name)) }
        }
        if !unscored.isEmpty { try container.encode(unscored, forKey: Self.unscoredKey) }
    }

    /// Reads every key of `FeatureMetrics.allKeys` the object has.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        self.init()
        for name in FeatureMetrics.allKeys where container.contains(Key(stringValue: name)) {
            let key = Key(stringValue: name)
            values[name] = try container.decodeNil(forKey: key) ? .some(nil) : try container.decode(Double.self, forKey: key)
        }
        unscored = try container.decodeIfPresent([String: String].self, forKey: Self.unscoredKey) ?? [:]
    }

    /// True when no metric was evaluated.
    public var isEmpty: Bool { values.isEmpty }
}
