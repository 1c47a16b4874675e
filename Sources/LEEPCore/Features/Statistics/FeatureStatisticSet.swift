/// The mergeable statistics of one run's feature rows, one of each `StatisticKind` the run
/// gathers: what a worker accumulates per run, what a partial frame carries section by section,
/// and what the aggregator merges and hands to the feature metrics.
///
/// Which kinds a run gathers is a pure function of its shape (`plan`), so every worker of a run
/// gathers the same ones; a merge keeps only the kinds both sides have, and a metric whose
/// statistic is missing says so instead of failing the run.
public struct FeatureStatisticSet: Sendable, Equatable {
    /// D.
    public let featureWidth: Int
    /// Y (grows with `widened` when shards know more classes).
    public private(set) var targetClasses: Int
    private var members: [StatisticKind: any MergeableStatistic]

    /// The kinds a run of D features and Y target classes gathers: those every feature metric
    /// reads (`FeatureMetricSelection.all`) — the moments, the class variances, and the per-class
    /// scatters when their memory is bounded for that shape (`ClassScatters.fits`; the
    /// within-class scatter is then their sum, derived rather than gathered: one `dsyrk` of every
    /// row fewer), else the within-class scatter itself.
    public static func plan(featureWidth: Int, targetClasses: Int) -> [StatisticKind] {
        FeatureMetricSelection.all.statisticKinds(featureWidth: featureWidth, targetClasses: targetClasses)
    }

    /// Empty statistics of `kinds` (default: the `plan` for the shape).
    public init(featureWidth: Int, targetClasses: Int, kinds: [StatisticKind]? = nil) {
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        let kinds = kinds ?? Self.plan(featureWidth: featureWidth, targetClasses: targetClasses)
        members = Dictionary(uniqueKeysWithValues: kinds.map { kind in
            (kind, kind.statisticType.init(featureWidth: featureWidth, targetClasses: targetClasses))
        })
    }

    /// The set of these statistics (of D features and Y classes each, one of a kind).
    public init(_ statistics: [any MergeableStatistic]) {
        precondition(!statistics.isEmpty, "a set of no statistics has no shape")
        let (width, classes) = (statistics[0].featureWidth, statistics.map(\.targetClasses).max()!)
        precondition(statistics.allSatisfy { $0.featureWidth == width }, "statistics of one set share D")
        featureWidth = width
        targetClasses = classes
        members = Dictionary(uniqueKeysWithValues: statistics.map { (type(of: $0).kind, $0.widened(erasedTo: classes)) })
    }

    /// Reads the sections of a partial back (`flattened` of each kind), refusing any that no
    /// honest statistics can be.
    public init(
        sections: [StatisticKind: [Double]], sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        self.featureWidth = featureWidth
        self.targetClasses = targetClasses
        members = [:]
        for (kind, values) in sections {
            members[kind] = try kind.statisticType.init(
                flattened: values, sampleCount: sampleCount, featureWidth: featureWidth, targetClasses: targetClasses)
        }
    }

    /// The kinds held, in section order.
    public var kinds: [StatisticKind] { members.keys.sorted() }

    /// n (every member covers the same rows).
    public var sampleCount: Int { members.values.first?.sampleCount ?? 0 }

    /// Bytes of memory the statistics hold, about.
    public var byteCount: Int { members.values.reduce(0) { $0 + $1.byteCount } }

    /// The statistic of type `S`, when the run gathers it or it follows from one the run gathers
    /// (the within-class scatter from the per-class scatters).
    public subscript<S: MergeableStatistic>(_ type: S.Type) -> S? {
        if let member = members[S.kind] as? S { return member }
        guard S.kind == .withinClassScatter, let perClass = members[.classScatters] as? ClassScatters else { return nil }
        return WithinClassScatter(pooling: perClass) as? S
    }

    /// Each kind's flat form (a partial frame's sections).
    public var sections: [(kind: StatisticKind, values: [Double])] {
        kinds.map { ($0, members[$0]!.flattened) }
    }

    /// Adds every row of `chunk` to every statistic, or none of them: the chunk is validated once.
    public mutating func add(_ chunk: FeatureChunk) throws(FeatureAddError) {
        try chunk.validate(featureWidth: featureWidth, targetClasses: targetClasses)
        addValidated(chunk)
    }

    /// Adds every row of a chunk that `FeatureChunk.validate` accepted for this D and Y.
    public mutating func addValidated(_ chunk: FeatureChunk) {
        for kind in kinds { members[kind]!.addValidated(chunk) }
    }

    /// Adds the statistics of other rows of the run; a kind the other lacks is dropped (its
    /// metric cannot cover every row any more), except the within-class scatter, which one side
    /// may hold as per-class scatters (shards of other Y can plan differently): those are
    /// pooled first.
    public mutating func merge(_ other: FeatureStatisticSet) throws(FeatureWidthMismatch) {
        guard other.featureWidth == featureWidth else {
            throw FeatureWidthMismatch(expected: featureWidth, actual: other.featureWidth)
        }
        var theirs = other.members
        if theirs[.classScatters] == nil, members[.withinClassScatter] == nil, let mine = self[ClassScatters.self] {
            members[.withinClassScatter] = WithinClassScatter(pooling: mine)
        }
        if members[.classScatters] == nil, theirs[.withinClassScatter] == nil, let pooled = other[WithinClassScatter.self] {
            theirs[.withinClassScatter] = pooled
        }
        let classes = max(targetClasses, other.targetClasses)
        for kind in kinds {
            guard let statistic = theirs[kind] else {
                members[kind] = nil
                continue
            }
            try members[kind]!.merge(erased: statistic.widened(erasedTo: classes))
        }
        targetClasses = classes
    }

    /// The same statistics for a larger Y.
    public func widened(toTargetClasses newTargetClasses: Int) -> FeatureStatisticSet {
        var copy = self
        for kind in kinds { copy.members[kind] = members[kind]!.widened(erasedTo: newTargetClasses) }
        copy.targetClasses = newTargetClasses
        return copy
    }

    public static func == (lhs: FeatureStatisticSet, rhs: FeatureStatisticSet) -> Bool {
        lhs.featureWidth == rhs.featureWidth && lhs.targetClasses == rhs.targetClasses && lhs.kinds == rhs.kinds
            && lhs.kinds.allSatisfy { lhs.members[$0]!.isEqual(to: rhs.members[$0]!) }
    }
}
