#if DEBUG || LEEP_FUZZ  // @testable import needs a module built for testing (debug, or ops/fuzz's -enable-testing)
import WireFormat

@testable import Pipeline

/// What must hold of a run's ledger after any record it did not fail on: the rules of
/// docs/architecture.md ("exactly once on at-least-once delivery") as checks.
enum LedgerInvariants {
    static func check(_ ledger: RunLedger) {
        _ = ledger.missingSummary  // in every incomplete and abandoned record: it must stay cheap
        // Every accepted chunk was accepted once, in one partial: the sums count its rows once.
        if let joint = ledger.joint {
            require(joint.sampleCount == Int(RunWorld.rows(Array(ledger.accepted))),
                    "the joint counts \(joint.sampleCount) samples, its accepted chunks hold \(RunWorld.rows(Array(ledger.accepted))) rows")
        } else {
            require(ledger.accepted.isEmpty, "chunks accepted without sums")
        }
        guard ledger.manifestsComplete else {
            require(ledger.expectedChunkCount == nil && !ledger.isPass1Complete, "complete before its manifests")
            return
        }
        // The assembled manifests: each shard's chunks, in part order, tile its rows exactly once.
        for (index, shard) in ledger.manifests.shards {
            let chunks = shard.chunks.map(\.id)
            require(chunks.allSatisfy { $0.shard == index }, "shard \(index) lists a chunk of another shard")
            require(chunks.count == Int(shard.totalChunks), "shard \(index) lists \(chunks.count) of \(shard.totalChunks) chunks")
            var next: UInt64 = 0
            for chunk in chunks.sorted(by: { $0.firstRow < $1.firstRow }) {
                require(chunk.firstRow == next, "shard \(index): rows from \(next) are listed as \(chunk) (a gap, an overlap or a duplicate)")
                next = chunk.firstRow + UInt64(chunk.rowCount)
            }
            require(next == shard.shardRows, "shard \(index): its chunks end at row \(next) of \(shard.shardRows)")
        }
        let listed = Set(ledger.expectedChunks.map(\.id))
        require(listed.count == ledger.expectedChunks.count && ledger.expectedChunkCount == listed.count, "chunk count disagrees")
        require(ledger.accepted.isSubset(of: listed), "an accepted chunk is not in the manifests")
        require(ledger.isPass1Complete == (ledger.joint != nil && ledger.accepted == listed), "pass 1 complete, or not, wrongly")
    }
}
#endif
