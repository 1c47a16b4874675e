import LEEPCore

/// A pure computation a run's machine needs before it can move on, too long to run on the
/// aggregator's loop: the feature metrics' decompositions (one eigendecomposition of the
/// centred scatter for LogME and both H-scores, GBC's and TransRate's factorisations — O(D³),
/// about a second at D = 2,048) and SFDA's fits. The machine asks for it with the `compute`
/// action; the loop runs it on another thread and reports its value with the `computed` event,
/// so that no other run waits behind it.
///
/// Its input is settled when it is asked for (pass 1's statistics, or a step's results, once
/// all are in), so its value is a function of the run's records alone: an owner that replays
/// them computes the same one.
struct RunComputation: Sendable {
    /// Which of a run's computations this is; a run's machine asks for each at most once.
    enum Kind: Hashable, Sendable {
        /// The one-pass feature metrics of the merged statistics, for the final record.
        case featureMetrics
        /// SFDA's fit to the rows (before its mixing pass).
        case sfdaFirstFit
        /// SFDA's fit to the mixed rows (before its scoring pass).
        case sfdaSecondFit
    }

    /// What it computes from.
    enum Input: Sendable {
        case featureMetrics(FeatureStatisticSet)
        case sfdaFit(WithinClassScatter, shrinkage: Double?)
    }

    /// What it gave.
    enum Value: Sendable {
        case featureMetrics(FeatureMetricReport)
        case sfdaFit(Result<SFDA.Fit, SFDAUndefined>)
    }

    let kind: Kind
    let input: Input

    /// Runs it, on whatever thread calls.
    func callAsFunction() -> Value {
        switch input {
        case .featureMetrics(let statistics): .featureMetrics(FeatureMetricReport(statistics: statistics))
        case .sfdaFit(let statistics, let shrinkage): .sfdaFit(SFDA.Fit.fit(statistics, shrinkage: shrinkage))
        }
    }
}
