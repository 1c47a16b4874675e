import LEEPCore
import WireFormat

/// The facts of one run, folded from its records on the runs topic in partition order: its
/// manifests, the pass-1 partials accepted and their merged sums, the pass-2 results. `apply`
/// is a pure function of those records, so any aggregator that replays the topic reaches the
/// same facts. Where the run stands — collecting, pass 2, failed, closed — is
/// `RunStateMachine`'s to decide; the ledger only says what a record changed.
///
/// The rules that make results exact on at-least-once delivery:
/// * a pass-1 partial is accepted only if its chunk set is disjoint from the accepted set
///   (duplicates from producer retries, zombies and re-consumed chunks are dropped whole);
/// * chunks no accepted partial covers are recomputed by repair tasks;
/// * pass-2 results count once per task id; the score is their sum in task-id order.
struct RunLedger {
    /// What applying a record changed.
    enum Change: Equatable {
        /// Nothing that moves the run on (a part of a partial, a duplicate, a manifest).
        case none
        /// A partial was accepted or a new pass-2 result came in.
        case progress
        /// The run cannot be scored, for this reason.
        case failure(String)
    }

    /// One shard's manifest, assembled from its parts.
    struct ShardManifest {
        let totalChunks: UInt32
        let partCount: UInt32
        let targetClasses: Int
        let shardRows: UInt64
        var parts: [UInt32: [LocatedChunk]] = [:]
        var isComplete: Bool { parts.count == Int(partCount) }
        var chunks: [LocatedChunk] { parts.keys.sorted().flatMap { parts[$0]! } }
    }

    /// Parts of one partial received so far.
    struct PartialParts {
        let chunks: [ChunkID]
        let partCount: UInt32
        let targetClasses: Int
        let shape: RunShape
        let sampleCount: UInt64
        var parts: [UInt32: PartialFrame] = [:]
    }

    /// What every chunk of a run has in common beyond its Y: Z, and D (0 without features).
    struct RunShape: Equatable {
        let sourceClasses: Int
        let featureWidth: Int

        /// "3 source classes", "16 features a row", "no features": what differs from `other`.
        func difference(from other: RunShape) -> (String, String) {
            func softmax(_ classes: Int) -> String { classes == 0 ? "no softmax outputs" : "\(classes) source classes" }
            if sourceClasses != other.sourceClasses {
                return (softmax(sourceClasses), other.sourceClasses == 0 ? "none" : "\(other.sourceClasses)")
            }
            func features(_ width: Int) -> String { width == 0 ? "no features" : "\(width) features a row" }
            return (features(featureWidth), other.featureWidth == 0 ? "none" : "\(other.featureWidth)")
        }
    }

    let run: String
    private(set) var identity: RunIdentity?
    /// The identity comes from a manifest (not from a rejection, whose names a worker gave).
    private var manifestNamed = false
    private(set) var shardCount: UInt32?
    /// Z and D as the manifests declare them: the run's own. Partials are checked against
    /// them, never the other way round — whichever chunk a worker met first may be the stray.
    private var manifestShape: RunShape?
    /// A partial with another Z or D than the accepted sums, met before any manifest: kept
    /// aside (its first chunk, not its sums), so that the manifest can say which is wrong.
    private var otherShape: (shape: RunShape, chunk: ChunkID)?
    private(set) var manifests: [UInt32: ShardManifest] = [:]
    private(set) var joint: JointAccumulator?
    /// The merged feature statistics of the accepted partials (nil for a run without features).
    private(set) var features: FeatureStatisticSet?
    private(set) var accepted: Set<ChunkID> = []
    private var partials: [UInt64: PartialParts] = [:]
    /// Every task's result, once all its parts are in, by task id.
    private(set) var results: [UInt64: TaskOutcome] = [:]
    /// Parts of results that come in several (an SFDA mixing task's statistics), by task id.
    private var resultParts: [UInt64: [UInt32: TaskResultFrame]] = [:]
    /// A manifest asked for EEP accuracy (pass 2 then computes the predictor's hits).
    private(set) var eepAccuracyRequested = false
    /// Partials dropped because they overlapped what was already accepted.
    private(set) var duplicatesDropped = 0
    /// How many accepted partials came in (progress is measured by it).
    private(set) var acceptedPartials = 0
    /// Chunks covered by the repair tasks issued (from the aggregator's markers).
    var chunksRepaired = 0

    init(run: String) { self.run = run }

    // MARK: Applying records

    /// Applies a manifest, a partial, a pass-2 result or a rejection of this run; markers are
    /// the state machine's.
    mutating func apply(_ frame: Frame) -> Change {
        switch frame {
        case .manifest(let manifest): return apply(manifest)
        case .partial(let part): return apply(part)
        case .taskResult(let result):
            // Results may land before the marker that lists their tasks; keep them until it comes.
            guard results[result.taskID] == nil else { return .none }
            guard result.statistics != nil else {
                results[result.taskID] = TaskOutcome(
                    sampleCount: result.sampleCount, sum: result.logEEPSum, hits: result.hits, statistics: nil)
                return .progress
            }
            return applyPart(of: result)
        case .chunkRejected(let rejection):
            if identity == nil { identity = rejection.run }
            return .failure(rejection.reason)
        case .chunk, .task, .conditional, .runMarker, .partitionMarker:
            return .none
        }
    }

    /// A part of a result in parts; the result counts once every part is in and they make
    /// statistics of rows (parts that do not, from no worker, are dropped).
    private mutating func applyPart(of result: TaskResultFrame) -> Change {
        let part = result.statistics!
        var parts = resultParts[result.taskID] ?? [:]
        if let first = parts.values.first {
            let known = first.statistics!
            guard known.part.partCount == part.part.partCount, known.targetClasses == part.targetClasses,
                  known.featureWidth == part.featureWidth, first.sampleCount == result.sampleCount
            else { return .none }
        }
        parts[part.part.partIndex] = result
        guard parts.count == Int(part.part.partCount) else {
            resultParts[result.taskID] = parts
            return .none
        }
        resultParts[result.taskID] = nil
        var values = [Double](
            repeating: 0, count: WithinClassScatter.flattenedCount(targetClasses: part.targetClasses, featureWidth: part.featureWidth))
        var filled = 0
        for piece in parts.values.map({ $0.statistics! }) {
            values.replaceSubrange(piece.part.cellStart..<(piece.part.cellStart + piece.part.cellCount), with: piece.values)
            filled += piece.part.cellCount
        }
        guard filled == values.count, let statistics = try? WithinClassScatter(
            flattened: values, sampleCount: Int(result.sampleCount), featureWidth: part.featureWidth,
            targetClasses: part.targetClasses)
        else { return .none }
        results[result.taskID] = TaskOutcome(sampleCount: result.sampleCount, sum: 0, hits: 0, statistics: statistics)
        return .progress
    }

    private mutating func apply(_ manifest: ManifestFrame) -> Change {
        // A rejection may have named the run before; the manifest's names are the producer's own.
        if let named = identity, !named.model.isEmpty || !named.dataset.isEmpty, manifestNamed,
           named.model != manifest.run.model || named.dataset != manifest.run.dataset {
            // Shards of one run score one pair: a run id reused for another pair is not one run.
            return .failure("shard \(manifest.shard) scores model \"\(manifest.run.model)\" on data set "
                + "\"\(manifest.run.dataset)\", an earlier manifest model \"\(named.model)\" on \"\(named.dataset)\"")
        }
        if !manifestNamed { identity = manifest.run }
        manifestNamed = true
        if let shardCount, shardCount != manifest.shardCount {
            return .failure("shard \(manifest.shard) says the run has \(manifest.shardCount) shards, an earlier manifest said \(shardCount)")
        }
        shardCount = manifest.shardCount
        let shape = RunShape(sourceClasses: manifest.sourceClasses, featureWidth: manifest.featureWidth)
        if let known = manifestShape, known != shape {
            let (this, run) = shape.difference(from: known)
            return .failure("the manifest of shard \(manifest.shard) has \(this), the run has \(run)")
        }
        manifestShape = shape
        if let acceptedShape, acceptedShape != shape, let chunk = accepted.min() {
            return shapeFailure(chunk: chunk, shape: acceptedShape)
        }
        if let otherShape, otherShape.shape != shape {
            return shapeFailure(chunk: otherShape.chunk, shape: otherShape.shape)
        }
        if manifest.eepAccuracy { eepAccuracyRequested = true }
        var shard = manifests[manifest.shard] ?? ShardManifest(
            totalChunks: manifest.totalChunks, partCount: manifest.partCount, targetClasses: manifest.targetClasses,
            shardRows: manifest.shardRows)
        let ids = manifest.chunks.map(\.id)
        if let existing = shard.parts[manifest.partIndex] {
            // The same shard published again: fine with the same chunks, fatal with others.
            if existing.map(\.id) != ids || shard.partCount != manifest.partCount {
                return .failure("shard \(manifest.shard) was published again with other chunk boundaries")
            }
            return .none
        }
        guard shard.partCount == manifest.partCount, shard.totalChunks == manifest.totalChunks,
              shard.shardRows == manifest.shardRows
        else {
            return .failure("shard \(manifest.shard) was published again with other chunk boundaries")
        }
        shard.parts[manifest.partIndex] = manifest.chunks
        manifests[manifest.shard] = shard
        return checkAcceptedAgainstManifests() ?? .none
    }

    private mutating func apply(_ part: PartialFrame) -> Change {
        // A worker lists each chunk once and counts every row of them. Decoding checks no more
        // than the part's own fields; a part that does not add up cannot come from a worker,
        // and accepting it would count rows twice or not at all.
        guard Set(part.chunks).count == part.chunks.count,
              part.sampleCount == part.chunks.reduce(0, { $0 + UInt64($1.rowCount) })
        else { return .none }
        let shape = RunShape(sourceClasses: part.sourceClasses, featureWidth: part.featureWidth)
        if manifestShape.map({ $0 != shape }) ?? false, let chunk = part.chunks.min() {
            return shapeFailure(chunk: chunk, shape: shape)
        }
        if let acceptedShape, acceptedShape != shape {
            // No manifest yet to say which shape is the run's: keep the evidence, not the sums.
            if otherShape == nil, let chunk = part.chunks.min() { otherShape = (shape, chunk) }
            return .none
        }
        var partial = partials[part.partialID] ?? PartialParts(
            chunks: part.chunks, partCount: part.part.partCount, targetClasses: part.targetClasses,
            shape: shape, sampleCount: part.sampleCount)
        // Every part of one partial must describe the same partial; a part that does not is
        // ignored (it cannot come from a worker, and mixing it in would corrupt the sums).
        guard part.chunks == partial.chunks, part.part.partCount == partial.partCount,
              part.targetClasses == partial.targetClasses, shape == partial.shape,
              part.sampleCount == partial.sampleCount
        else { return .none }
        partial.parts[part.part.partIndex] = part
        // A run known only from partials is reported under the names its chunks carry.
        if identity == nil, !part.model.isEmpty || !part.dataset.isEmpty { identity = part.identity }
        guard partial.parts.count == Int(partial.partCount) else {
            partials[part.partialID] = partial
            return .none
        }
        partials[part.partialID] = nil
        let chunks = Set(partial.chunks)
        guard chunks.isDisjoint(with: accepted) else {
            duplicatesDropped += 1
            return .none
        }
        // A run of features alone (Z = 0) has no joint: its partials carry statistics only, whose
        // class counts must add up to the partial's samples (`FeatureStatisticSet` checks).
        var incoming: JointAccumulator?
        if partial.shape.sourceClasses > 0 {
            guard let sums = Self.sums(of: partial) else { return .none }
            incoming = sums
        }
        var incomingFeatures: FeatureStatisticSet?
        if partial.shape.featureWidth > 0 {
            guard let statistics = Self.featureStatistics(of: partial) else { return .none }
            incomingFeatures = statistics
        }
        guard incoming != nil || incomingFeatures != nil else { return .none }
        if let incoming { Self.accumulate(incoming, into: &joint) }
        if let incomingFeatures { Self.accumulate(incomingFeatures, into: &features) }
        accepted.formUnion(chunks)
        acceptedPartials += 1
        return checkAcceptedAgainstManifests() ?? .progress
    }

    /// A complete partial's sums; nil unless its argmax counts are a worker's: none negative,
    /// one for each of its samples. Counts from anywhere else would make NCE wrong, or overflow
    /// when merged.
    private static func sums(of partial: PartialParts) -> JointAccumulator? {
        var sums = [Double](repeating: 0, count: partial.targetClasses * partial.shape.sourceClasses)
        var counts = [Int64](repeating: 0, count: sums.count)
        for part in partial.parts.values where part.section == .joint {
            let cells = part.part.cellStart..<(part.part.cellStart + part.part.cellCount)
            sums.replaceSubrange(cells, with: part.jointSums)
            counts.replaceSubrange(cells, with: part.argmaxCounts)
        }
        let samples = Int64(partial.sampleCount)  // below 2^63: decoding checks it
        var counted: Int64 = 0
        for count in counts {
            guard count >= 0, count <= samples - counted else { return nil }
            counted += count
        }
        guard counted == samples else { return nil }
        // Parts agree on Y and Z (checked as they arrive), so the shape always matches.
        return try? JointAccumulator(
            targetClasses: partial.targetClasses, sourceClasses: partial.shape.sourceClasses,
            sampleCount: Int(samples), jointSums: sums, argmaxCounts: counts)
    }

    /// A complete partial's feature statistics; nil unless it carries exactly the sections a
    /// worker gathers for its shape (`FeatureStatisticSet.plan`), each complete, and each is
    /// statistics of rows (`MergeableStatistic.init(flattened:)` says what it refuses).
    private static func featureStatistics(of partial: PartialParts) -> FeatureStatisticSet? {
        let width = partial.shape.featureWidth
        let kinds = FeatureStatisticSet.plan(featureWidth: width, targetClasses: partial.targetClasses)
        var sections = [StatisticKind: [Double]]()
        var filled = [StatisticKind: Int]()
        for kind in kinds {
            sections[kind] = [Double](
                repeating: 0, count: kind.statisticType.flattenedCount(targetClasses: partial.targetClasses, featureWidth: width))
        }
        for part in partial.parts.values {
            guard case .statistic(let kind) = part.section else { continue }
            guard sections[kind] != nil else { return nil }
            let cells = part.part.cellStart..<(part.part.cellStart + part.part.cellCount)
            sections[kind]!.replaceSubrange(cells, with: part.featureValues)
            filled[kind, default: 0] += cells.count
        }
        // Parts are numbered across all sections, so a complete partial may still lack one: a
        // worker always sends every section of its plan.
        guard kinds.allSatisfy({ filled[$0] == sections[$0]!.count }) else { return nil }
        return try? FeatureStatisticSet(
            sections: sections, sampleCount: Int(partial.sampleCount), featureWidth: width,
            targetClasses: partial.targetClasses)
    }

    /// Merges `incoming` into a run's sums: shards may know different Y (each its own largest
    /// label), so both are widened to the larger first. The sums are taken out of `current`
    /// while they merge, so that they are added to in place rather than copied.
    private static func accumulate<Sums: RunSums>(_ incoming: Sums, into current: inout Sums?) {
        guard var merged = current.take() else {
            current = incoming
            return
        }
        let targetClasses = max(incoming.targetClasses, merged.targetClasses)
        merged = merged.widened(toTargetClasses: targetClasses)
        merged.add(incoming.widened(toTargetClasses: targetClasses))
        current = merged
    }

    /// Z and D of the sums accepted so far.
    private var acceptedShape: RunShape? {
        guard joint != nil || features != nil else { return nil }
        return RunShape(sourceClasses: joint?.sourceClasses ?? 0, featureWidth: features?.featureWidth ?? 0)
    }

    /// The run fails, blaming the chunk whose Z or D is not its manifest's.
    private func shapeFailure(chunk: ChunkID, shape: RunShape) -> Change {
        let (this, run) = shape.difference(from: manifestShape ?? RunShape(sourceClasses: 0, featureWidth: 0))
        return .failure("chunk \(chunk) has \(this), its run's manifest \(run)")
    }

    /// Once every manifest is in, each must account for its shard's rows, and every accepted
    /// chunk must be one they list: anything else means a shard was published with other
    /// boundaries, and its rows may be counted twice.
    private func checkAcceptedAgainstManifests() -> Change? {
        guard manifestsComplete else { return nil }
        for (index, shard) in manifests {
            let chunks = shard.chunks
            let rows = chunks.reduce(UInt64(0)) { $0 + UInt64($1.id.rowCount) }
            guard chunks.count == Int(shard.totalChunks), rows == shard.shardRows else {
                return .failure("the manifest of shard \(index) lists \(chunks.count) chunks of \(rows) rows, "
                    + "but declares \(shard.totalChunks) chunks of \(shard.shardRows) rows")
            }
            guard Self.coverEachRowOnce(chunks, rows: shard.shardRows) else {
                return .failure("the manifest of shard \(index) lists chunks that do not cover its rows 0..<\(shard.shardRows) once each")
            }
        }
        let listed = Set(expectedChunks.map(\.id))
        if let stray = accepted.first(where: { !listed.contains($0) }) {
            return .failure("chunk \(stray) is not in its shard's manifest: the shard was published again with other chunk boundaries")
        }
        return nil
    }

    /// True when `chunks` cover rows 0..<`rows`, each row in exactly one chunk. The right count
    /// of chunks and of rows is not enough: two chunks that overlap, or one listed twice, would
    /// count rows twice.
    private static func coverEachRowOnce(_ chunks: [LocatedChunk], rows: UInt64) -> Bool {
        var next: UInt64 = 0
        for chunk in chunks.sorted(by: { $0.id.firstRow < $1.id.firstRow }) {
            guard chunk.id.firstRow == next else { return false }
            next += UInt64(chunk.id.rowCount)
        }
        return next == rows
    }

    // MARK: Derived facts

    /// Z of the run: its manifests', or, before any came in, that of the sums accepted so far;
    /// nil for a run of features alone (Z = 0), whose records have no `source_classes`.
    var sourceClasses: Int? {
        (manifestShape?.sourceClasses ?? joint?.sourceClasses).flatMap { $0 > 0 ? $0 : nil }
    }

    /// True when every shard's manifest is complete.
    var manifestsComplete: Bool {
        guard let shardCount else { return false }
        return manifests.count == Int(shardCount) && manifests.values.allSatisfy(\.isComplete)
    }

    /// Every chunk the manifests list, in shard and row order, with its first known location.
    var expectedChunks: [LocatedChunk] {
        manifests.keys.sorted().flatMap { manifests[$0]!.chunks }
    }

    /// Chunks listed but not yet accepted.
    var missingChunks: [LocatedChunk] {
        expectedChunks.filter { !accepted.contains($0.id) }
    }

    /// Y of the run: the largest any shard or partial declared.
    var targetClasses: Int {
        max(joint?.targetClasses ?? 0, features?.targetClasses ?? 0, manifests.values.map(\.targetClasses).max() ?? 0)
    }

    /// The number of chunks the manifests list, once they are all in.
    var expectedChunkCount: Int? {
        manifestsComplete ? manifests.values.reduce(0) { $0 + Int($1.totalChunks) } : nil
    }

    /// Pass 1 is done: every listed chunk is accepted.
    var isPass1Complete: Bool {
        // Once the manifests are complete every accepted chunk is one they list (or the run has
        // failed), so counting is enough: no O(chunks) scan on every record.
        guard let expected = expectedChunkCount else { return false }
        return (joint != nil || features != nil) && accepted.count == expected
    }

    /// How many missing shards `missingSummary` names.
    static let missingShardsNamed = 10

    /// Why the run cannot finish yet, while its manifests are incomplete: which shards have no
    /// complete manifest and how many listed chunks no accepted partial covers.
    var missingSummary: String {
        var parts: [String] = []
        if let shardCount {
            // The shard count is a record's word (up to 2^32 - 1): name the first few missing
            // shards and count the rest, rather than list billions.
            let missingCount = Int(shardCount) - manifests.values.count(where: \.isComplete)
            if missingCount > 0 {
                let named = (0..<shardCount).lazy.filter { manifests[$0]?.isComplete != true }.prefix(Self.missingShardsNamed)
                parts.append("no complete manifest from shard" + (missingCount == 1 ? " " : "s ")
                    + named.map(String.init).joined(separator: ", ")
                    + (missingCount > Self.missingShardsNamed ? ", … (\(missingCount) in all)" : "") + " of \(shardCount)")
            }
        } else {
            parts.append("no manifest from any shard")
        }
        let listedMissing = missingChunks.count
        if listedMissing > 0 { parts.append("\(listedMissing) chunks listed by the manifests have no partial") }
        parts.append("\(accepted.count) chunks accepted")
        return parts.joined(separator: "; ")
    }

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

    /// The one-pass feature metrics of the merged statistics, and D; nil for a run without
    /// features. Each metric stands alone: one undefined for these data is reported, never fatal.
    func featureReport() -> Result<(report: FeatureMetricReport, width: Int), RunFailure>? {
        guard let features else { return nil }
        // Pass 1 accepted the same chunks for both, so the statistics cover pass 1's rows.
        if let joint, features.sampleCount != joint.sampleCount {
            return .failure(RunFailure(
                reason: "the feature statistics cover \(features.sampleCount) samples but pass 1 covered \(joint.sampleCount)"))
        }
        return .success((FeatureMetricReport(statistics: features), features.featureWidth))
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

/// A task's result, all its parts in: the rows it covered, the sum its pass asks for (Σ log EEP_i
/// or Σ of SFDA's own-class probabilities), the predictor's hits, and an SFDA mixing task's
/// statistics of its mixed rows.
struct TaskOutcome {
    let sampleCount: UInt64
    let sum: Double
    let hits: UInt64
    let statistics: WithinClassScatter?
}

/// A run's sums that merge once both sides know the same Y: the joint and the feature statistics.
protocol RunSums {
    var targetClasses: Int { get }
    func widened(toTargetClasses: Int) -> Self
    /// Adds sums of the same shape (checked as their partials arrive).
    mutating func add(_ other: Self)
}

extension JointAccumulator: RunSums {
    mutating func add(_ other: JointAccumulator) { try! merge(other) }
}

extension FeatureStatisticSet: RunSums {
    mutating func add(_ other: FeatureStatisticSet) { try! merge(other) }
}

/// Why a run cannot be scored.
struct RunFailure: Error {
    let reason: String
}
