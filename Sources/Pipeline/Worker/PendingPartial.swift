import LEEPCore
import WireFormat

/// Pass-1 sums a worker has accumulated for one run since its last flush, and exactly which
/// chunks they cover.
struct PendingPartial {
    let run: RunIdentity
    var joint: JointAccumulator
    private(set) var chunks: [ChunkID] = []
    private var covered: Set<ChunkID> = []

    init(run: RunIdentity, targetClasses: Int, sourceClasses: Int) {
        self.run = run
        joint = JointAccumulator(targetClasses: targetClasses, sourceClasses: sourceClasses)
    }

    /// True when the chunk is already in these sums (the same record consumed twice).
    func covers(_ chunk: ChunkID) -> Bool { covered.contains(chunk) }

    mutating func record(_ chunk: ChunkID) {
        chunks.append(chunk)
        covered.insert(chunk)
    }

    /// Adds a chunk frame's rows, or none of them (the sums are unchanged when it throws).
    ///
    /// The sums move into the visitor and back rather than being copied: a copy would make
    /// every chunk duplicate the Y×Z arrays (copy-on-write), which for large Y×Z costs more
    /// than the chunk itself.
    mutating func add(_ frame: ChunkFrame, check: RowCheck) throws {
        var adder = JointAdder(partial: PendingPartial(run: run, targetClasses: 1, sourceClasses: 1), check: check)
        swap(&adder.partial, &self)
        defer { swap(&adder.partial, &self) }
        try frame.visit(&adder)
    }

    /// The partial as frames, each within `maxMessageBytes`.
    func frames(maxMessageBytes: Int) -> [PartialFrame] {
        let id = PartialFrame.id(run: run.id, chunks: chunks)
        let budget = max(PartialFrame.bytesPerCell, maxMessageBytes - 4096 - chunks.count * PartialFrame.bytesPerChunk)
        let sums = joint.jointSums
        let counts = joint.argmaxCounts
        return MatrixPart.split(cells: sums.count, bytesPerCell: PartialFrame.bytesPerCell, maxPayloadBytes: budget).map { part in
            let cells = part.cellStart..<(part.cellStart + part.cellCount)
            return PartialFrame(
                run: run, partialID: id, targetClasses: joint.targetClasses, sourceClasses: joint.sourceClasses,
                sampleCount: UInt64(joint.sampleCount), chunks: chunks, part: part,
                jointSums: Array(sums[cells]), argmaxCounts: Array(counts[cells]))
        }
    }
}

/// Adds a chunk's rows to a pending partial.
struct JointAdder: ChunkVisitor {
    var partial: PendingPartial
    let check: RowCheck

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        do {
            try partial.joint.add(chunk, check: check)
        } catch .row(let invalid) {
            throw invalid
        } catch .shape(let mismatch) {
            throw ChunkShapeError(mismatch: mismatch)
        }
    }
}

/// Adds a chunk's rows to pass-2 sums.
struct EEPAdder: ChunkVisitor {
    var eep = EEPAccumulator()
    let conditional: ConditionalTable
    /// Also count the expected empirical predictor's hits (Y dot products a row instead of one).
    let accuracy: Bool

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        do {
            try eep.add(chunk, conditional: conditional, accuracy: accuracy)
        } catch {
            throw ChunkShapeError(mismatch: error)
        }
    }
}

/// A chunk whose number of source classes differs from its run's.
struct ChunkShapeError: Error, CustomStringConvertible {
    let mismatch: ShapeMismatch
    var description: String { "the chunk's class count differs from its run's: \(mismatch)" }
}
