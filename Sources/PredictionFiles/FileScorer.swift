import LEEPCore

/// `leep score`: LEEP, NCE and EEP accuracy of a predictions/labels file pair, in two passes
/// over the memory-mapped predictions (DESIGN §2: exact LEEP needs the final conditional).
public enum FileScorer {
    /// Scores `pair`; throws the first invalid row, naming its file, before any result exists.
    public static func score(
        _ pair: PredictionPair, check: RowCheck = RowCheck(), rowsPerChunk: Int? = nil
    ) throws -> LEEPScore {
        let rows = rowsPerChunk ?? pair.defaultRowsPerChunk
        var pass1 = JointPass(
            joint: JointAccumulator(targetClasses: pair.targetClasses, sourceClasses: pair.sourceClasses),
            check: check)
        try pair.forEachChunk(rowsPerChunk: rows, &pass1)
        var pass2 = EEPPass(conditional: ConditionalTable(joint: pass1.joint))
        try pair.forEachChunk(rowsPerChunk: rows, &pass2)
        return LEEPScore(joint: pass1.joint, eep: pass2.eep)
    }
}

/// Pass 1 over a file: validate and accumulate the joint.
struct JointPass: ChunkVisitor {
    var joint: JointAccumulator
    let check: RowCheck

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        do {
            try joint.add(chunk, check: check)
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
    var eep = EEPAccumulator()

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        try eep.add(chunk, conditional: conditional)
    }
}
