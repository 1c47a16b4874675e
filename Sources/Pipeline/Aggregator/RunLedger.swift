import LEEPCore
import WireFormat

/// Everything the aggregator knows about one run, rebuilt from the run's records on the runs
/// topic in partition order. `apply` is a pure function of those records, so any aggregator
/// that replays the topic reaches the same state and the same decisions (docs/architecture.md, "Exactly once").
///
/// The rules that make results exact on at-least-once delivery:
/// * a pass-1 partial is accepted only if its chunk set is disjoint from the accepted set
///   (duplicates from producer retries, zombies and re-consumed chunks are dropped whole);
/// * chunks no accepted partial covers are recomputed by repair tasks;
/// * pass-2 results count once per task id; the score is their sum in task-id order.
struct RunLedger {
    /// Where the run stands.
    enum Phase: Equatable {
        case collecting
        case pass2(expected: Set<UInt64>)
        case closed
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
        let sourceClasses: Int
        let sampleCount: UInt64
        var parts: [UInt32: PartialFrame] = [:]
    }

    let run: String
    private(set) var identity: RunIdentity?
    private(set) var shardCount: UInt32?
    private(set) var sourceClasses: Int?
    private(set) var manifests: [UInt32: ShardManifest] = [:]
    private(set) var joint: JointAccumulator?
    private(set) var accepted: Set<ChunkID> = []
    private var partials: [UInt64: PartialParts] = [:]
    private(set) var results: [UInt64: TaskResultFrame] = [:]
    private(set) var phase: Phase = .collecting
    private(set) var failure: String?
    /// A manifest asked for EEP accuracy (pass 2 then computes the predictor's hits).
    private(set) var eepAccuracyRequested = false
    /// Partials dropped because they overlapped what was already accepted.
    private(set) var duplicatesDropped = 0
    /// How many accepted partials came in (progress is measured by it).
    private(set) var acceptedPartials = 0
    /// Chunks covered by the repair tasks issued (from the aggregator's markers).
    private(set) var chunksRepaired = 0
    /// Records of this run applied so far (activity, for stall detection).
    private(set) var recordCount = 0

    init(run: String) { self.run = run }

    // MARK: Applying records

    /// Applies one record of this run, in partition order.
    mutating func apply(_ frame: Frame) {
        guard phase != .closed else { return }  // A closed run's later records change nothing.
        recordCount += 1
        switch frame {
        case .manifest(let manifest): apply(manifest)
        case .partial(let part): apply(part)
        case .taskResult(let result):
            // Results may land before the marker that lists their tasks; keep them until it comes.
            if results[result.taskID] == nil { results[result.taskID] = result }
        case .chunkRejected(let rejection):
            if identity == nil { identity = rejection.run }
            fail("\(rejection.reason)")
        case .runMarker(let marker):
            switch marker.marker {
            case .pass2Issued(let taskIDs):
                if case .collecting = phase { phase = .pass2(expected: Set(taskIDs)) }
            case .closed:
                phase = .closed
            case .repairIssued(let chunks):
                chunksRepaired += Int(chunks)
            }
        case .chunk, .task, .conditional:
            break  // Not runs-topic frames; the aggregator dead-letters them before they get here.
        }
    }

    private mutating func apply(_ manifest: ManifestFrame) {
        // A rejection may have named the run before; the manifest's names are the producer's own.
        if identity == nil || identity?.model.isEmpty == true { identity = manifest.run }
        if let shardCount, shardCount != manifest.shardCount {
            return fail("shard \(manifest.shard) says the run has \(manifest.shardCount) shards, an earlier manifest said \(shardCount)")
        }
        shardCount = manifest.shardCount
        guard checkSourceClasses(manifest.sourceClasses, from: "the manifest of shard \(manifest.shard)") else { return }
        // Settled before pass 2 is issued: the tasks and the final score must agree on it.
        if manifest.eepAccuracy && phase == .collecting { eepAccuracyRequested = true }
        var shard = manifests[manifest.shard] ?? ShardManifest(
            totalChunks: manifest.totalChunks, partCount: manifest.partCount, targetClasses: manifest.targetClasses,
            shardRows: manifest.shardRows)
        let ids = manifest.chunks.map(\.id)
        if let existing = shard.parts[manifest.partIndex] {
            // The same shard published again: fine with the same chunks, fatal with others.
            if existing.map(\.id) != ids || shard.partCount != manifest.partCount {
                return fail("shard \(manifest.shard) was published again with other chunk boundaries")
            }
            return
        }
        guard shard.partCount == manifest.partCount, shard.totalChunks == manifest.totalChunks,
              shard.shardRows == manifest.shardRows
        else {
            return fail("shard \(manifest.shard) was published again with other chunk boundaries")
        }
        shard.parts[manifest.partIndex] = manifest.chunks
        manifests[manifest.shard] = shard
        checkAcceptedAgainstManifests()
    }

    private mutating func apply(_ part: PartialFrame) {
        guard failure == nil, case .collecting = phase else { return }
        guard checkSourceClasses(part.sourceClasses, from: "a partial") else { return }
        var partial = partials[part.partialID] ?? PartialParts(
            chunks: part.chunks, partCount: part.part.partCount, targetClasses: part.targetClasses,
            sourceClasses: part.sourceClasses, sampleCount: part.sampleCount)
        // Every part of one partial must describe the same partial; a part that does not is
        // ignored (it cannot come from a worker, and mixing it in would corrupt the sums).
        guard part.chunks == partial.chunks, part.part.partCount == partial.partCount,
              part.targetClasses == partial.targetClasses, part.sampleCount == partial.sampleCount
        else { return }
        partial.parts[part.part.partIndex] = part
        guard partial.parts.count == Int(partial.partCount) else {
            partials[part.partialID] = partial
            return
        }
        partials[part.partialID] = nil
        let chunks = Set(partial.chunks)
        guard chunks.isDisjoint(with: accepted) else {
            duplicatesDropped += 1
            return
        }
        merge(partial)
        accepted.formUnion(chunks)
        acceptedPartials += 1
        checkAcceptedAgainstManifests()
    }

    private mutating func merge(_ partial: PartialParts) {
        var sums = [Double](repeating: 0, count: partial.targetClasses * partial.sourceClasses)
        var counts = [Int64](repeating: 0, count: sums.count)
        for part in partial.parts.values {
            let cells = part.part.cellStart..<(part.part.cellStart + part.part.cellCount)
            sums.replaceSubrange(cells, with: part.jointSums)
            counts.replaceSubrange(cells, with: part.argmaxCounts)
        }
        // Parts agree on Y and Z (checked as they arrive), so the shape always matches.
        guard let incoming = try? JointAccumulator(
            targetClasses: partial.targetClasses, sourceClasses: partial.sourceClasses,
            sampleCount: Int(partial.sampleCount), jointSums: sums, argmaxCounts: counts)
        else { return }
        // Shards may know different Y (each its own largest label): widen to the larger.
        let targetClasses = max(incoming.targetClasses, joint?.targetClasses ?? 0)
        // Taken out of `joint` first, so merging adds in place instead of copying Y×Z.
        var merged = joint.take()?.widened(toTargetClasses: targetClasses)
            ?? JointAccumulator(targetClasses: targetClasses, sourceClasses: partial.sourceClasses)
        try! merged.merge(incoming.widened(toTargetClasses: targetClasses))
        joint = merged
    }

    private mutating func checkSourceClasses(_ z: Int, from source: String) -> Bool {
        if let sourceClasses, sourceClasses != z {
            fail("\(source) has \(z) source classes, the run has \(sourceClasses)")
            return false
        }
        sourceClasses = z
        return true
    }

    /// Once every manifest is in, each must account for its shard's rows, and every accepted
    /// chunk must be one they list: anything else means a shard was published with other
    /// boundaries, and its rows may be counted twice.
    private mutating func checkAcceptedAgainstManifests() {
        guard manifestsComplete else { return }
        for (index, shard) in manifests {
            let chunks = shard.chunks
            let rows = chunks.reduce(UInt64(0)) { $0 + UInt64($1.id.rowCount) }
            guard chunks.count == Int(shard.totalChunks), rows == shard.shardRows else {
                return fail("the manifest of shard \(index) lists \(chunks.count) chunks of \(rows) rows, "
                    + "but declares \(shard.totalChunks) chunks of \(shard.shardRows) rows")
            }
        }
        let listed = Set(expectedChunks.map(\.id))
        if let stray = accepted.first(where: { !listed.contains($0) }) {
            fail("chunk \(stray) is not in its shard's manifest: the shard was published again with other chunk boundaries")
        }
    }

    private mutating func fail(_ reason: String) {
        if failure == nil { failure = reason }
    }

    // MARK: Derived facts

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
        max(joint?.targetClasses ?? 0, manifests.values.map(\.targetClasses).max() ?? 0)
    }

    /// The number of chunks the manifests list, once they are all in.
    var expectedChunkCount: Int? {
        manifestsComplete ? manifests.values.reduce(0) { $0 + Int($1.totalChunks) } : nil
    }

    /// Pass 1 is done: every listed chunk is accepted.
    var isReadyForPass2: Bool {
        failure == nil && phase == .collecting && manifestsComplete && missingChunks.isEmpty && joint != nil
    }

    /// Why the run cannot finish yet, while its manifests are incomplete: which shards have no
    /// complete manifest and how many listed chunks no accepted partial covers.
    var missingSummary: String {
        var parts: [String] = []
        if let shardCount {
            let missing = (0..<shardCount).filter { manifests[$0]?.isComplete != true }
            if !missing.isEmpty {
                parts.append("no complete manifest from shard" + (missing.count == 1 ? " " : "s ")
                    + missing.map(String.init).joined(separator: ", ") + " of \(shardCount)")
            }
        } else {
            parts.append("no manifest from any shard")
        }
        let listedMissing = missingChunks.count
        if listedMissing > 0 { parts.append("\(listedMissing) chunks listed by the manifests have no partial") }
        parts.append("\(accepted.count) chunks accepted")
        return parts.joined(separator: "; ")
    }

    /// Pass-2 results of the issued tasks.
    var pass2Results: (done: Int, expected: Int)? {
        guard case .pass2(let expected) = phase else { return nil }
        return (expected.filter { results[$0] != nil }.count, expected.count)
    }

    /// The final score once pass 2 is complete; a failure reason if the passes disagree.
    func finalScore() -> Result<LEEPScore, RunFailure>? {
        guard case .pass2(let expected) = phase, let joint, expected.allSatisfy({ results[$0] != nil }) else { return nil }
        var eep = EEPAccumulator()
        // Sum in task-id order, so every aggregator rounds identically.
        for id in expected.sorted() {
            let result = results[id]!
            eep.merge(EEPAccumulator(sampleCount: Int(result.sampleCount), logEEPSum: result.logEEPSum, hits: Int(result.hits)))
        }
        guard eep.sampleCount == joint.sampleCount else {
            return .failure(RunFailure(reason: "pass 2 covered \(eep.sampleCount) samples but pass 1 covered \(joint.sampleCount)"))
        }
        return .success(LEEPScore(joint: joint, eep: eep, accuracy: eepAccuracyRequested))
    }
}

/// Why a run cannot be scored.
struct RunFailure: Error {
    let reason: String
}
