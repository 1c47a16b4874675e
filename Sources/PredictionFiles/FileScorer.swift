import Dispatch
import LEEPCore
import Synchronization

/// `leep score`: LEEP, NCE and EEP accuracy of a predictions/labels file pair, in two passes
/// over the memory-mapped predictions (docs/leep.md: exact LEEP needs the final conditional).
///
/// Each pass splits the rows into one contiguous slice per thread; every slice gets its own
/// accumulator, and the slices are merged in row order — the same merge the pipeline does
/// across machines, so one core or many give the same score to rounding.
public enum FileScorer {
    /// Scores `pair` on `threads` threads; throws the first invalid row in file order, naming
    /// its file, before any result exists.
    public static func score(
        _ pair: PredictionPair, check: RowCheck = RowCheck(), rowsPerChunk: Int? = nil, threads: Int = 1,
        accuracy: Bool = true
    ) throws -> LEEPScore {
        var phases = PhaseTimes()
        return try score(pair, check: check, rowsPerChunk: rowsPerChunk, threads: threads, accuracy: accuracy, phases: &phases)
    }

    /// `score`, timing pass 1, the conditional and pass 2 into `phases`.
    public static func score(
        _ pair: PredictionPair, check: RowCheck = RowCheck(), rowsPerChunk: Int? = nil, threads: Int = 1,
        accuracy: Bool = true, phases: inout PhaseTimes
    ) throws -> LEEPScore {
        let rows = rowsPerChunk ?? pair.defaultRowsPerChunk
        let slices = slices(of: pair.sampleCount, threads: threads, rowsPerChunk: rows)
        // A joint too large for the cache is added label by label within a chunk
        // (`JointAccumulator.addDiscardingOnRefusal`): chunks of at least 8·Y rows, so that each
        // joint row fetched serves about eight samples. A chunk is a view of the mapped file.
        let groups = JointAccumulator.addsByLabel(targetClasses: pair.targetClasses, sourceClasses: pair.sourceClasses)
        let pass1Rows = rowsPerChunk ?? (groups ? max(rows, 8 * pair.targetClasses) : rows)
        let joints = try inParallel(slices) { slice in
            var pass = JointPass(
                joint: JointAccumulator(targetClasses: pair.targetClasses, sourceClasses: pair.sourceClasses),
                check: check)
            try pair.forEachChunk(rows: slice, rowsPerChunk: pass1Rows, &pass)
            return pass.joint
        }
        var joint = joints[0]
        for other in joints.dropFirst() { try joint.merge(other) }
        phases.lap("pass1")
        let conditional = ConditionalTable(joint: joint)
        phases.lap("conditional")
        // EEP accuracy is a matrix product per chunk: at least 256 rows a product, so that the
        // conditional is read once per 256 samples rather than once per small chunk.
        // Without it, a conditional too large for the cache is read label by label, as pass 1's joint.
        let pass2Rows = accuracy ? max(rows, 256) : pass1Rows
        let parts = try inParallel(slices) { slice in
            var pass = EEPPass(conditional: conditional, accuracy: accuracy)
            try pair.forEachChunk(rows: slice, rowsPerChunk: pass2Rows, &pass)
            return pass.eep
        }
        var eep = parts[0]
        for other in parts.dropFirst() { eep.merge(other) }
        phases.lap("pass2")
        return LEEPScore(joint: joint, eep: eep, accuracy: accuracy)
    }

    /// Contiguous row ranges, one per thread, cut at chunk boundaries.
    static func slices(of count: Int, threads: Int, rowsPerChunk: Int) -> [Range<Int>] {
        let chunks = (count + rowsPerChunk - 1) / rowsPerChunk
        let threads = max(1, min(threads, chunks))
        return (0..<threads).map { index in
            let first = chunks * index / threads * rowsPerChunk
            let end = min(count, chunks * (index + 1) / threads * rowsPerChunk)
            return first..<end
        }
    }

    /// Runs `body` on every slice at once and returns the results in slice order, or the error
    /// of the first slice (in row order) that failed.
    static func inParallel<Result: Sendable>(
        _ slices: [Range<Int>], _ body: @Sendable (Range<Int>) throws -> Result
    ) throws -> [Result] {
        let outcomes = Mutex([Int: Swift.Result<Result, any Error>]())
        DispatchQueue.concurrentPerform(iterations: slices.count) { index in
            let outcome = Swift.Result { try body(slices[index]) }
            outcomes.withLock { $0[index] = outcome }
        }
        let collected = outcomes.withLock { $0 }
        return try slices.indices.map { try collected[$0]!.get() }
    }
}

/// Pass 1 over a file: validate and accumulate the joint, each row in one read (a refusal
/// fails the whole command, so the accumulator it leaves behind is never used).
struct JointPass: ChunkVisitor {
    var joint: JointAccumulator
    let check: RowCheck

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        do {
            try joint.addDiscardingOnRefusal(chunk, check: check)
        } catch .row(let invalid) {
            throw invalid
        } catch .shape(let mismatch) {
            preconditionFailure("a file's chunks all have its Z: \(mismatch)")
        }
    }
}

/// Pass 2 over a file: Σ log EEP_i and the predictor's hits under the final conditional.
struct EEPPass: ChunkVisitor {
    let conditional: ConditionalTable
    let accuracy: Bool
    var eep = EEPAccumulator()

    init(conditional: ConditionalTable, accuracy: Bool) {
        self.conditional = conditional
        self.accuracy = accuracy
    }

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        try eep.add(chunk, conditional: conditional, accuracy: accuracy)
    }
}
