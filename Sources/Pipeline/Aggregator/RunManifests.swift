import WireFormat

/// The manifests of one run's shards, assembled from their parts: how many shards the run has,
/// the shape (Z, D) they declare, whether EEP accuracy was asked for, and every chunk each
/// shard lists. Part of `RunLedger`'s fold; the checks against the accepted partials are the
/// ledger's.
struct RunManifests {
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

    /// What adding a manifest part did.
    enum Outcome: Equatable {
        /// A new part of a shard's manifest.
        case added
        /// A part already held, published again with the same chunks.
        case repeated
        /// The manifests contradict each other, for this reason.
        case contradiction(String)
    }

    /// How many shards the manifests say the run has.
    private(set) var shardCount: UInt32?
    /// Z and D as the manifests declare them: the run's own.
    private(set) var shape: RunShape?
    /// A manifest asked for EEP accuracy (pass 2 then computes the predictor's hits).
    private(set) var eepAccuracyRequested = false
    private(set) var shards: [UInt32: ShardManifest] = [:]

    /// Adds one part of a shard's manifest: refused when it contradicts the parts before it
    /// (another shard count, another shape, other chunk boundaries for the same shard).
    mutating func add(_ manifest: ManifestFrame) -> Outcome {
        if let shardCount, shardCount != manifest.shardCount {
            return .contradiction(
                "shard \(manifest.shard) says the run has \(manifest.shardCount) shards, an earlier manifest said \(shardCount)")
        }
        shardCount = manifest.shardCount
        let declared = RunShape(sourceClasses: manifest.sourceClasses, featureWidth: manifest.featureWidth)
        if let known = shape, known != declared {
            let (this, run) = declared.difference(from: known)
            return .contradiction("the manifest of shard \(manifest.shard) has \(this), the run has \(run)")
        }
        shape = declared
        if manifest.eepAccuracy { eepAccuracyRequested = true }
        var shard = shards[manifest.shard] ?? ShardManifest(
            totalChunks: manifest.totalChunks, partCount: manifest.partCount, targetClasses: manifest.targetClasses,
            shardRows: manifest.shardRows)
        let ids = manifest.chunks.map(\.id)
        if let existing = shard.parts[manifest.partIndex] {
            // The same shard published again: fine with the same chunks, fatal with others.
            guard existing.map(\.id) == ids, shard.partCount == manifest.partCount else {
                return .contradiction("shard \(manifest.shard) was published again with other chunk boundaries")
            }
            return .repeated
        }
        guard shard.partCount == manifest.partCount, shard.totalChunks == manifest.totalChunks,
              shard.shardRows == manifest.shardRows
        else {
            return .contradiction("shard \(manifest.shard) was published again with other chunk boundaries")
        }
        shard.parts[manifest.partIndex] = manifest.chunks
        shards[manifest.shard] = shard
        return .added
    }

    /// True when every shard's manifest is complete.
    var isComplete: Bool {
        guard let shardCount else { return false }
        return shards.count == Int(shardCount) && shards.values.allSatisfy(\.isComplete)
    }

    /// Every chunk the manifests list, in shard and row order, with its first known location.
    var chunks: [LocatedChunk] { shards.keys.sorted().flatMap { shards[$0]!.chunks } }

    /// The number of chunks the manifests list, once they are all in.
    var chunkCount: Int? { isComplete ? shards.values.reduce(0) { $0 + Int($1.totalChunks) } : nil }

    /// The largest Y a shard declared (0 before any).
    var targetClasses: Int { shards.values.map(\.targetClasses).max() ?? 0 }

    /// Once every manifest is in: why they do not describe their shards' rows, or why an
    /// `accepted` chunk is not one they list (a shard published again with other boundaries,
    /// whose rows may be counted twice); nil when nothing is wrong or they are not all in.
    func contradiction(accepting accepted: Set<ChunkID>) -> String? {
        guard isComplete else { return nil }
        for (index, shard) in shards {
            let chunks = shard.chunks
            let rows = chunks.reduce(UInt64(0)) { $0 + UInt64($1.id.rowCount) }
            guard chunks.count == Int(shard.totalChunks), rows == shard.shardRows else {
                return "the manifest of shard \(index) lists \(chunks.count) chunks of \(rows) rows, "
                    + "but declares \(shard.totalChunks) chunks of \(shard.shardRows) rows"
            }
            guard Self.coverEachRowOnce(chunks, rows: shard.shardRows) else {
                return "the manifest of shard \(index) lists chunks that do not cover its rows 0..<\(shard.shardRows) once each"
            }
        }
        let listed = Set(chunks.map(\.id))
        if let stray = accepted.first(where: { !listed.contains($0) }) {
            return "chunk \(stray) is not in its shard's manifest: the shard was published again with other chunk boundaries"
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

    /// How many missing shards `missingSummary` names.
    static let missingShardsNamed = 10

    /// Which shards have no complete manifest yet ("no manifest from any shard" before any).
    var missingShards: String? {
        guard let shardCount else { return "no manifest from any shard" }
        // The shard count is a record's word (up to 2^32 - 1): name the first few missing
        // shards and count the rest, rather than list billions.
        let missingCount = Int(shardCount) - shards.values.count(where: \.isComplete)
        guard missingCount > 0 else { return nil }
        let named = (0..<shardCount).lazy.filter { shards[$0]?.isComplete != true }.prefix(Self.missingShardsNamed)
        return "no complete manifest from shard" + (missingCount == 1 ? " " : "s ")
            + named.map(String.init).joined(separator: ", ")
            + (missingCount > Self.missingShardsNamed ? ", … (\(missingCount) in all)" : "") + " of \(shardCount)"
    }
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
