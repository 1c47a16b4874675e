#if DEBUG || LEEP_FUZZ  // plays its scripts through the targets, which @testable import Pipeline
import Foundation

/// Scripts of honest runs in the encoding `RunWorld` and the script targets read: the seeds of
/// manifest-assembly, run-state-machine and partition-state-machine. The fuzzer then starts
/// from whole runs and varies them, instead of having to discover what a manifest or a
/// complete partial looks like.
///
/// Each write mirrors a read of `RunWorld`, value for value; `machineScripts` and
/// `partitionScripts` play every script and fail unless it ends in a final score, so the two cannot drift apart unnoticed.
struct HonestRun {
    let sourceClasses: Int
    let targetClasses: Int
    let chunksPerTask: Int
    /// Each shard's rows and rows per chunk.
    let shards: [(rows: Int, perChunk: Int)]

    static let shapes = [
        HonestRun(sourceClasses: 3, targetClasses: 2, chunksPerTask: 2, shards: [(rows: 4, perChunk: 1)]),
        HonestRun(sourceClasses: 2, targetClasses: 3, chunksPerTask: 1, shards: [(rows: 5, perChunk: 2), (rows: 3, perChunk: 3)]),
        HonestRun(sourceClasses: 4, targetClasses: 1, chunksPerTask: 3, shards: [(rows: 6, perChunk: 1), (rows: 0, perChunk: 1), (rows: 2, perChunk: 1)]),
    ]

    private var chunksPerShard: [Int] { shards.map { ($0.rows + $0.perChunk - 1) / $0.perChunk } }
    private var chunkCount: Int { chunksPerShard.reduce(0, +) }
    /// Pass 2's tasks: per partition (shard mod 2), `chunksPerTask` chunks a task.
    private var taskCount: Int {
        [0, 1].map { partition in
            let chunks = chunksPerShard.indices.filter { $0 % 2 == partition }.map { chunksPerShard[$0] }.reduce(0, +)
            return (chunks + chunksPerTask - 1) / chunksPerTask
        }.reduce(0, +)
    }

    // MARK: Scripts

    /// Ledger scripts: the manifests (whole, or in two parts), the partials, and the fixtures.
    static func manifestScripts(fixtures: [(name: String, bytes: [UInt8])]) -> [(String, [UInt8])] {
        shapes.enumerated().flatMap { index, run in
            [false, true].map { split in
                var script = FuzzScript()
                run.world(&script)
                run.manifests(&script, split: split) { $0.int(0, in: 0...7) }
                run.partials(&script) { $0.int(5, in: 0...7) }
                for (_, bytes) in fixtures where bytes.count <= 255 { rawFrame(&script, bytes) { $0.int(7, in: 0...7) } }
                return ("run\(index)\(split ? "-parts" : "")", script.bytes)
            }
        }
    }

    /// State-machine scripts: a run from its manifests to its final score, live or replayed then
    /// caught up; then the first run again with each fixture among its records (a fixture may
    /// fail or close the run: those are not required to end in a score).
    static func machineScripts(fixtures: [(name: String, bytes: [UInt8])]) throws -> [(String, [UInt8])] {
        let honest = shapes.enumerated().flatMap { index, run in
            [false, true].map { live in ("run\(index)-\(live ? "live" : "replayed")", run.machineScript(live: live)) }
        }
        for (name, bytes) in honest {
            let outcome = bytes.withUnsafeBytes { RunStateMachineTarget.run($0) }
            guard outcome == .final else { throw SeedError(description: "seed \(name) ends \(String(describing: outcome)), not final") }
        }
        return honest + fixtures.filter { $0.bytes.count <= 255 }.map { fixture in
            ("run0-with-\(fixture.name)", shapes[0].machineScript(live: true, fixture: fixture.bytes))
        }
    }

    private func machineScript(live: Bool, fixture: [UInt8]? = nil) -> [UInt8] {
        let kind = { (code: Int) in { (script: inout FuzzScript) in script.int(0, in: 0...7); script.int(code, in: 0...15) } }
        var script = FuzzScript()
        world(&script)
        script.bool(live)
        manifests(&script, split: !live, event: kind(0))
        if let fixture { Self.rawFrame(&script, fixture, event: kind(10)) }
        partials(&script, event: kind(4))
        if !live { kind(11)(&script) }  // caught up
        results(&script, event: kind(7))
        return script.bytes
    }

    /// Partition scripts: a new owner asks for its barrier and writes it, reads the run's
    /// records, its barrier comes back (caught up: pass 2 starts), the results come, a round
    /// commits. Each must end with the run closed final.
    static func partitionScripts() throws -> [(String, [UInt8])] {
        let scripts = shapes.enumerated().map { index, run in ("partition-run\(index)", run.partitionScript()) }
        for (name, bytes) in scripts {
            let finals = bytes.withUnsafeBytes { PartitionStateMachineTarget.run($0) }
            guard finals == 1 else { throw SeedError(description: "seed \(name) closes \(finals) runs final, not 1") }
        }
        return scripts
    }

    private func partitionScript() -> [UInt8] {
        let kind = { (code: Int) in { (script: inout FuzzScript) in script.int(0, in: 0...7); script.int(code, in: 0...15) } }
        var script = FuzzScript()
        world(&script)
        kind(11)(&script)  // a round starts: the barrier is asked for
        kind(12)(&script)
        script.int(1, in: 0...3)  // written; no run closed
        manifests(&script, split: false, event: kind(0))
        partials(&script, event: kind(4))
        kind(13)(&script)
        script.bool(true)  // the barrier comes back: caught up
        results(&script, event: kind(7))
        kind(14)(&script)
        script.bool(true)  // a round ends and commits
        return script.bytes
    }

    /// A result for every pass-2 task, honest.
    private func results(_ script: inout FuzzScript, event: (inout FuzzScript) -> Void) {
        for task in 0..<taskCount {
            event(&script)
            script.int(task, in: 0...(taskCount - 1))
            script.byte(0)  // hits
            script.byte(8)  // Σ log EEP = -1
            script.int(0, in: 0...15)  // honest
        }
    }

    struct SeedError: Error, CustomStringConvertible {
        let description: String
    }

    // MARK: Records (mirroring RunWorld's reads)

    private func world(_ script: inout FuzzScript) {
        script.int(sourceClasses, in: 1...4)
        script.int(targetClasses, in: 1...3)
        script.int(chunksPerTask, in: 1...3)
        script.int(shards.count, in: 1...3)
        for shard in shards {
            script.int(shard.rows, in: 0...6)
            script.int(shard.perChunk, in: 1...3)
        }
    }

    private func manifests(_ script: inout FuzzScript, split: Bool, event: (inout FuzzScript) -> Void) {
        for shard in shards.indices {
            let parts = split ? 2 : 1
            for part in 0..<parts {
                event(&script)
                script.int(shard, in: 0...(shards.count - 1))
                script.int(parts, in: 1...3)
                script.int(part, in: 0...(parts - 1))
                script.int(0, in: 0...15)  // honest
                script.int(targetClasses, in: 1...3)
                script.bool(true)  // EEP accuracy
            }
        }
    }

    /// Partials of up to four chunks each, covering every chunk once, each in one part.
    private func partials(_ script: inout FuzzScript, event: (inout FuzzScript) -> Void) {
        for first in stride(from: 0, to: chunkCount, by: 4) {
            let chunks = Array(first..<min(chunkCount, first + 4))
            event(&script)
            script.int(chunks.count, in: 0...4)
            for chunk in chunks { script.int(chunk, in: 0...(chunkCount - 1)) }
            script.int(targetClasses, in: 1...3)
            script.int(0, in: 0...15)  // honest
            let cells = targetClasses * sourceClasses
            for cell in 0..<cells { script.byte(UInt8(cell % 8 + 1)) }  // joint sums
            script.int(0, in: 0...(cells - 1))  // the cell holding the argmax counts
            script.int(1, in: 0...15)  // no NaN
            script.int(0, in: 0...2)
            script.int(1, in: 1...3)  // one part
            script.int(1, in: 0...7)  // none dropped
        }
    }

    private static func rawFrame(_ script: inout FuzzScript, _ bytes: [UInt8], event: (inout FuzzScript) -> Void) {
        event(&script)
        script.int(bytes.count, in: 0...255)
        script.raw(bytes)
    }
}
#endif
