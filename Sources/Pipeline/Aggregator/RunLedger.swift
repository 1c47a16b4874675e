import LEEPCore
import WireFormat

/// The facts of one run, folded from its records on the runs topic in partition order: its
/// manifests (`RunManifests`), the pass-1 partials accepted and their merged sums (whole
/// partials from `PartialAssembler`), the task results, the chunks repaired. `apply` is a pure
/// function of those records, and the only code that changes a ledger, so any aggregator that
/// replays the topic reaches the same facts. Where the run stands — collecting, a task pass,
/// failed, closed — is `RunStateMachine`'s to decide; the ledger only says what a record
/// changed. The scores are computed from the facts (`RunScoring.swift`).
///
/// The rules that make results exact on at-least-once delivery:
/// * a pass-1 partial is accepted only if its chunk set is disjoint from the accepted set
///   (duplicates from producer retries, zombies and re-consumed chunks are dropped whole);
/// * chunks no accepted partial covers are recomputed by repair tasks;
/// * pass-2 results count once per task id; the score is their sum in task-id order.
struct RunLedger {
    /// What applying a record changed.
    enum Change: Equatable {
        /// Nothing that moves the run on (a part of a partial, a manifest).
        case none
        /// A whole partial overlapping chunks already accepted, dropped (a worker's retry).
        case duplicate
        /// A partial was accepted or a new pass-2 result came in.
        case progress
        /// The run cannot be scored, for this reason.
        case failure(String)
    }

    let run: String
    private(set) var identity: RunIdentity?
    /// The identity comes from a manifest (not from a rejection, whose names a worker gave).
    private var manifestNamed = false
    /// The shards' manifests. Z and D as they declare them are the run's own: partials are
    /// checked against them, never the other way round — whichever chunk a worker met first
    /// may be the stray.
    private(set) var manifests = RunManifests()
    /// A partial with another Z or D than the accepted sums, met before any manifest: kept
    /// aside (its first chunk, not its sums), so that the manifest can say which is wrong.
    private var otherShape: (shape: RunShape, chunk: ChunkID)?
    private(set) var joint: JointAccumulator?
    /// The merged feature statistics of the accepted partials (nil for a run without features).
    private(set) var features: FeatureStatisticSet?
    private(set) var accepted: Set<ChunkID> = []
    private var assembler = PartialAssembler()
    /// Every task's result, once all its parts are in, by task id.
    private(set) var results: [UInt64: TaskOutcome] = [:]
    /// Partials dropped because they overlapped what was already accepted.
    private(set) var duplicatesDropped = 0
    /// How many accepted partials came in (progress is measured by it).
    private(set) var acceptedPartials = 0
    /// Chunks covered by the repair tasks issued (from the aggregator's `repairIssued` markers).
    private(set) var chunksRepaired = 0
    /// Rows the workers sampled, for the estimate while pass 1 streams.
    private(set) var rowSample = RowSampleReservoir()

    init(run: String) { self.run = run }

    // MARK: Applying records

    /// Applies a manifest, a partial, a task result, a rejection, a row sample or a repair marker of this run;
    /// the other markers are the state machine's.
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
            guard let statistics = assembler.add(resultPart: result) else { return .none }
            results[result.taskID] = TaskOutcome(sampleCount: result.sampleCount, sum: 0, hits: 0, statistics: statistics)
            return .progress
        case .chunkRejected(let rejection):
            if identity == nil { identity = rejection.run }
            return .failure(rejection.reason)
        case .runMarker(let marker):
            if case .repairIssued(let chunks) = marker.marker { chunksRepaired += Int(chunks) }
            return .none
        case .rowSample(let sample):
            rowSample.add(sample)
            return .none
        case .chunk, .task, .conditional, .partitionMarker:
            return .none
        }
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
        switch manifests.add(manifest) {
        case .contradiction(let reason): return .failure(reason)
        case .repeated: return .none
        case .added: break
        }
        let shape = manifests.shape!
        if let acceptedShape, acceptedShape != shape, let chunk = accepted.min() {
            return shapeFailure(chunk: chunk, shape: acceptedShape)
        }
        if let otherShape, otherShape.shape != shape {
            return shapeFailure(chunk: otherShape.chunk, shape: otherShape.shape)
        }
        return manifests.contradiction(accepting: accepted).map(Change.failure) ?? .none
    }

    private mutating func apply(_ part: PartialFrame) -> Change {
        // A worker lists each chunk once and counts every row of them. Decoding checks no more
        // than the part's own fields; a part that does not add up cannot come from a worker,
        // and accepting it would count rows twice or not at all.
        guard Set(part.chunks).count == part.chunks.count,
              part.sampleCount == part.chunks.reduce(0, { $0 + UInt64($1.rowCount) })
        else { return .none }
        let shape = RunShape(sourceClasses: part.sourceClasses, featureWidth: part.featureWidth)
        if manifests.shape.map({ $0 != shape }) ?? false, let chunk = part.chunks.min() {
            return shapeFailure(chunk: chunk, shape: shape)
        }
        if let acceptedShape, acceptedShape != shape {
            // No manifest yet to say which shape is the run's: keep the evidence, not the sums.
            if otherShape == nil, let chunk = part.chunks.min() { otherShape = (shape, chunk) }
            return .none
        }
        let added = assembler.add(part, shape: shape)
        if case .dropped = added { return .none }
        // A run known only from partials is reported under the names its chunks carry.
        if identity == nil, !part.model.isEmpty || !part.dataset.isEmpty { identity = part.identity }
        guard case .whole(let partial) = added else { return .none }
        let chunks = Set(partial.chunks)
        guard chunks.isDisjoint(with: accepted) else {
            duplicatesDropped += 1
            return .duplicate
        }
        // A run of features alone (Z = 0) has no joint: its partials carry statistics only, whose
        // class counts must add up to the partial's samples (`FeatureStatisticSet` checks).
        var incoming: JointAccumulator?
        if partial.shape.sourceClasses > 0 {
            guard let sums = PartialAssembler.joint(of: partial) else { return .none }
            incoming = sums
        }
        var incomingFeatures: FeatureStatisticSet?
        if partial.shape.featureWidth > 0 {
            guard let statistics = PartialAssembler.featureStatistics(of: partial) else { return .none }
            incomingFeatures = statistics
        }
        guard incoming != nil || incomingFeatures != nil else { return .none }
        if let incoming { Self.accumulate(incoming, into: &joint) }
        if let incomingFeatures { Self.accumulate(incomingFeatures, into: &features) }
        accepted.formUnion(chunks)
        acceptedPartials += 1
        return manifests.contradiction(accepting: accepted).map(Change.failure) ?? .progress
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
        let (this, run) = shape.difference(from: manifests.shape ?? RunShape(sourceClasses: 0, featureWidth: 0))
        return .failure("chunk \(chunk) has \(this), its run's manifest \(run)")
    }

    // MARK: Derived facts

    /// Z of the run: its manifests', or, before any came in, that of the sums accepted so far;
    /// nil for a run of features alone (Z = 0), whose records have no `source_classes`.
    var sourceClasses: Int? {
        (manifests.shape?.sourceClasses ?? joint?.sourceClasses).flatMap { $0 > 0 ? $0 : nil }
    }

    /// A manifest asked for EEP accuracy (pass 2 then computes the predictor's hits).
    var eepAccuracyRequested: Bool { manifests.eepAccuracyRequested }

    /// How many shards the manifests say the run has.
    var shardCount: UInt32? { manifests.shardCount }

    /// True when every shard's manifest is complete.
    var manifestsComplete: Bool { manifests.isComplete }

    /// Every chunk the manifests list, in shard and row order, with its first known location.
    var expectedChunks: [LocatedChunk] { manifests.chunks }

    /// Chunks listed but not yet accepted.
    var missingChunks: [LocatedChunk] {
        expectedChunks.filter { !accepted.contains($0.id) }
    }

    /// Y of the run: the largest any shard or partial declared.
    var targetClasses: Int {
        max(joint?.targetClasses ?? 0, features?.targetClasses ?? 0, manifests.targetClasses)
    }

    /// The number of chunks the manifests list, once they are all in.
    var expectedChunkCount: Int? { manifests.chunkCount }

    /// Pass 1 is done: every listed chunk is accepted.
    var isPass1Complete: Bool {
        // Once the manifests are complete every accepted chunk is one they list (or the run has
        // failed), so counting is enough: no O(chunks) scan on every record.
        guard let expected = expectedChunkCount else { return false }
        return (joint != nil || features != nil) && accepted.count == expected
    }

    /// The estimate of the final LEEP from the rows merged so far (nil without a joint, before
    /// `minimumRowsMerged` rows, or with fewer than two sampled rows of accepted chunks).
    func leepEstimate(minimumRowsMerged: Int) -> LEEPEstimate? {
        guard let joint, joint.sampleCount >= minimumRowsMerged else { return nil }
        let totalRows = manifestsComplete ? expectedChunks.reduce(0) { $0 + Int($1.id.rowCount) } : nil
        return LEEPEstimate(joint: joint, rows: rowSample.rows(of: accepted), totalRows: totalRows, minimumRowsMerged: minimumRowsMerged)
    }

    /// Why the run cannot finish yet, while its manifests are incomplete: which shards have no
    /// complete manifest and how many listed chunks no accepted partial covers.
    var missingSummary: String {
        var parts: [String] = []
        if let shards = manifests.missingShards { parts.append(shards) }
        let listedMissing = missingChunks.count
        if listedMissing > 0 { parts.append("\(listedMissing) chunks listed by the manifests have no partial") }
        parts.append("\(accepted.count) chunks accepted")
        return parts.joined(separator: "; ")
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
