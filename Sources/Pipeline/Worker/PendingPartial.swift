import LEEPCore
import WireFormat

/// Pass-1 sums a worker has accumulated for one run since its last flush — the joint of the
/// softmax outputs when the chunks carry them, their features' statistics when they carry
/// features — and exactly which chunks they cover.
struct PendingPartial {
    let run: RunIdentity
    /// Y of the sums.
    let targetClasses: Int
    /// Z of the chunks; 0 for features alone.
    let sourceClasses: Int
    /// The joint of the softmax outputs; nil for a run of features alone.
    var joint: JointAccumulator?
    /// The feature statistics (`FeatureStatisticSet.plan`'s kinds); nil for a run without features.
    var features: FeatureStatisticSet?
    /// Feature rows received and not yet in `features`: added a block at a time (see
    /// `FeatureRowGatherer`), at most a block's worth (16 MB of float64), drained by `frames`.
    private var gathered: FeatureRowGatherer?
    private(set) var chunks: [ChunkID] = []
    private var covered: Set<ChunkID> = []
    /// The chunk record bytes these sums cover (the flush threshold counts them).
    var recordBytes = 0

    /// The rows added, as the joint (or, for features alone, the statistics) counted them.
    var sampleCount: Int { joint?.sampleCount ?? ((features?.sampleCount ?? 0) + (gathered?.rowCount ?? 0)) }

    /// Empty sums for chunks of Y target classes, Z source classes (0: none, features alone)
    /// and D features (0: none); Z and D are not both 0.
    init(run: RunIdentity, targetClasses: Int, sourceClasses: Int, featureWidth: Int) {
        precondition(sourceClasses > 0 || featureWidth > 0, "a chunk carries softmax outputs, features or both")
        self.run = run
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        joint = sourceClasses > 0 ? JointAccumulator(targetClasses: targetClasses, sourceClasses: sourceClasses) : nil
        features = featureWidth > 0 ? FeatureStatisticSet(featureWidth: featureWidth, targetClasses: targetClasses) : nil
        gathered = featureWidth > 0 ? FeatureRowGatherer(featureWidth: featureWidth) : nil
    }

    /// True when the chunk is already in these sums (the same record consumed twice).
    func covers(_ chunk: ChunkID) -> Bool { covered.contains(chunk) }

    mutating func record(_ chunk: ChunkID) {
        chunks.append(chunk)
        covered.insert(chunk)
    }

    /// Adds a chunk frame's rows; when it throws, the partial is to be discarded.
    ///
    /// The chunk's shape is checked first (softmax outputs of the partial's Z, or none when Z
    /// is 0; features of its D), then the features (labels included: a chunk of features alone
    /// has no softmax outputs whose check would catch a label out of range), then the softmax
    /// outputs are checked and added in one read of each row, and only then the features, which
    /// can no longer fail. A refused row leaves the rows before it in the joint: that costs
    /// nothing, because a refused chunk fails its run (`chunkRejected`), and the run's other sums
    /// count for nothing then — where checking a chunk whole before adding it read every row twice.
    /// The sums move into the visitor and back rather than being copied: a copy would make every
    /// chunk duplicate the Y×Z arrays (copy-on-write), which for large Y×Z costs more than the
    /// chunk itself.
    mutating func addDiscardingOnRefusal(_ frame: ChunkFrame, check: RowCheck) throws {
        guard frame.sourceClasses == sourceClasses else {
            throw ChunkShapeError(mismatch: ShapeMismatch(
                expected: (targetClasses, sourceClasses), actual: (targetClasses, frame.sourceClasses)))
        }
        guard (frame.features?.width ?? 0) == (features?.featureWidth ?? 0) else {
            throw ChunkFeatureWidthError(chunk: frame.features?.width ?? 0, run: features?.featureWidth ?? 0)
        }
        if let features {
            try frame.withFeatureChunk { chunk throws(FeatureAddError) in
                try chunk.validate(featureWidth: features.featureWidth, targetClasses: features.targetClasses)
            }
        }
        if joint != nil {
            var adder = JointAdder(
                partial: PendingPartial(run: run, targetClasses: 1, sourceClasses: 1, featureWidth: 0), check: check)
            swap(&adder.partial, &self)
            defer { swap(&adder.partial, &self) }
            try frame.visit(&adder)
        }
        if var statistics = features.take(), var gatherer = gathered.take() {
            try! frame.withFeatureChunk { chunk throws(FeatureAddError) in
                gatherer.append(chunk) { statistics.addValidated($0) }
            }
            (features, gathered) = (statistics, gatherer)
        }
    }

    /// Adds the gathered feature rows to the statistics.
    private mutating func drainGathered() {
        guard var statistics = features.take(), var gatherer = gathered.take() else { return }
        gatherer.drain { statistics.addValidated($0) }
        (features, gathered) = (statistics, gatherer)
    }

    /// The partial as frames, each within `maxMessageBytes`: joint cells (for softmax outputs)
    /// and feature statistics (for features), numbered over both.
    mutating func frames(maxMessageBytes: Int) -> [PartialFrame] {
        drainGathered()
        return PartialFrame.parts(
            run: run, partialID: PartialFrame.id(run: run.id, chunks: chunks), targetClasses: targetClasses,
            sourceClasses: sourceClasses, sampleCount: UInt64(sampleCount), chunks: chunks,
            jointSums: joint?.jointSums ?? [], argmaxCounts: joint?.argmaxCounts ?? [],
            featureWidth: features?.featureWidth ?? 0, statistics: features?.sections ?? [], messageLimit: maxMessageBytes)
    }
}

extension ChunkFrame {
    /// Calls `body` with the chunk's features and labels as a `FeatureChunk` (nothing when the
    /// chunk has no features).
    func withFeatureChunk(_ body: (FeatureChunk) throws(FeatureAddError) -> Void) throws(FeatureAddError) {
        guard let features else { return }
        func call<Scalar>(
            _ values: [Scalar], _ wrap: (UnsafeBufferPointer<Scalar>) -> FeatureChunk.Values
        ) throws(FeatureAddError) {
            let outcome: FeatureAddError? = values.withUnsafeBufferPointer { values in
                labels.withUnsafeBufferPointer { labels in
                    do throws(FeatureAddError) {
                        try body(FeatureChunk(
                            values: wrap(values), labels: labels, width: features.width, firstRow: Int(id.firstRow)))
                        return nil
                    } catch {
                        return error
                    }
                }
            }
            if let outcome { throw outcome }
        }
        switch features.values {
        case .float16(let values): try call(values, FeatureChunk.Values.float16)
        case .float32(let values): try call(values, FeatureChunk.Values.float32)
        case .float64(let values): try call(values, FeatureChunk.Values.float64)
        }
    }
}

/// A chunk whose feature width (0: no features) differs from the other chunks' of its partial.
struct ChunkFeatureWidthError: Error, CustomStringConvertible {
    let chunk: Int
    let run: Int
    var description: String {
        "the chunk has \(chunk == 0 ? "no features" : "\(chunk) features a row") where its run's other chunks have "
            + (run == 0 ? "none" : "\(run)")
    }
}

/// Adds a chunk's rows to a pending partial of softmax outputs (one whose joint is not nil).
struct JointAdder: ChunkVisitor {
    var partial: PendingPartial
    let check: RowCheck

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        precondition(partial.joint != nil, "softmax outputs added to a partial of features alone")
        do {
            try partial.joint?.addDiscardingOnRefusal(chunk, check: check)
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
