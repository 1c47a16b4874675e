import LEEPCore
import WireFormat

/// The scores of a run from its ledger's facts: LEEP, NCE and EEP accuracy from the joint and
/// pass 2's results, the one-pass feature metrics from the merged statistics, SFDA from its
/// passes' results. Pure functions of the fold; none changes it.
extension RunLedger {
    /// How many of `tasks` have their result.
    func resultCount(of tasks: Set<UInt64>) -> Int {
        tasks.count(where: { results[$0] != nil })
    }

    /// True when every one of `tasks` has its result.
    func hasResults(of tasks: Set<UInt64>) -> Bool { tasks.allSatisfy { results[$0] != nil } }

    /// LEEP, NCE and EEP accuracy once every one of pass 2's `tasks` has its result; a failure
    /// if the passes disagree; nil while results are missing.
    func leepScore(tasks: Set<UInt64>, accuracy: Bool) -> Result<LEEPScore, RunFailure>? {
        guard let joint, hasResults(of: tasks) else { return nil }
        // A score needs samples; a pass 2 of no task (a marker that lists none) covers none.
        guard joint.sampleCount > 0 else { return .failure(RunFailure(reason: "pass 1 covered no samples")) }
        var eep = EEPAccumulator()
        // Sum in task-id order, so every aggregator rounds identically.
        for id in tasks.sorted() {
            let result = results[id]!
            // The counts are a record's word: stop at the first that takes pass 2 past pass 1, or
            // counts more hits than rows, before a sum of counts near 2^63 overflows.
            guard result.sampleCount <= UInt64(joint.sampleCount - eep.sampleCount) else {
                return .failure(RunFailure(reason: "pass 2 covered more samples than the \(joint.sampleCount) of pass 1"))
            }
            guard result.hits <= result.sampleCount else {
                return .failure(RunFailure(reason: "a pass-2 result counts \(result.hits) hits in \(result.sampleCount) samples"))
            }
            eep.merge(EEPAccumulator(sampleCount: Int(result.sampleCount), logEEPSum: result.sum, hits: Int(result.hits)))
        }
        guard eep.sampleCount == joint.sampleCount else {
            return .failure(RunFailure(reason: "pass 2 covered \(eep.sampleCount) samples but pass 1 covered \(joint.sampleCount)"))
        }
        // A score record is JSON, which has no NaN or infinity: such a score fails the run.
        let score = LEEPScore(joint: joint, eep: eep, accuracy: accuracy)
        guard score.leep.isFinite, score.nce.isFinite else {
            return .failure(RunFailure(reason: "the score is not a finite number (LEEP \(score.leep), NCE \(score.nce))"))
        }
        return .success(score)
    }

    /// The merged feature statistics the one-pass feature metrics are computed from (off the
    /// loop: `RunComputation`), once checked against pass 1; nil for a run without features.
    func checkedFeatures() -> Result<FeatureStatisticSet, RunFailure>? {
        guard let features else { return nil }
        // Pass 1 accepted the same chunks for both, so the statistics cover pass 1's rows.
        if let joint, features.sampleCount != joint.sampleCount {
            return .failure(RunFailure(
                reason: "the feature statistics cover \(features.sampleCount) samples but pass 1 covered \(joint.sampleCount)"))
        }
        return .success(features)
    }

    /// The samples pass 1 covered.
    var sampleCount: Int { joint?.sampleCount ?? features?.sampleCount ?? 0 }

    /// The statistics of SFDA's mixed rows once every one of its mixing `tasks` has its result,
    /// merged in task-id order; a failure if they do not cover pass 1's rows.
    func mixedStatistics(tasks: Set<UInt64>) -> Result<WithinClassScatter, RunFailure>? {
        guard hasResults(of: tasks) else { return nil }
        var merged: WithinClassScatter?
        for id in tasks.sorted() {
            guard let statistics = results[id]!.statistics else {
                return .failure(RunFailure(reason: "an SFDA mixing task's result carries no statistics"))
            }
            if merged == nil { merged = statistics } else { try? merged!.merge(statistics) }
        }
        guard let merged, merged.sampleCount == sampleCount, merged.featureWidth == features?.featureWidth else {
            return .failure(RunFailure(reason: "SFDA's mixing pass covered \(merged?.sampleCount ?? 0) samples but pass 1 covered \(sampleCount)"))
        }
        return .success(merged)
    }

    /// SFDA's score, Σ own-class probability / n, once every one of its scoring `tasks` has its
    /// result; a failure if they do not cover pass 1's rows.
    func sfdaScore(tasks: Set<UInt64>) -> Result<Double, RunFailure>? {
        guard hasResults(of: tasks) else { return nil }
        var rows: UInt64 = 0
        var sum = 0.0
        for id in tasks.sorted() {
            let result = results[id]!
            guard result.sampleCount <= UInt64(sampleCount) - rows else {
                return .failure(RunFailure(reason: "SFDA's scoring pass covered more samples than the \(sampleCount) of pass 1"))
            }
            rows += result.sampleCount
            sum += result.sum
        }
        guard rows == UInt64(sampleCount), sampleCount > 0 else {
            return .failure(RunFailure(reason: "SFDA's scoring pass covered \(rows) samples but pass 1 covered \(sampleCount)"))
        }
        return .success(sum / Double(sampleCount))
    }
}
