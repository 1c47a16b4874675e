import LEEPCore
import WireFormat

/// Picks a chunk's sampled rows (`RowSampleFrame.sampledRows`: the smallest keys, `rate` of
/// them) and copies them, widened to float64, into the frame the worker sends beside its sums.
struct RowSampler: ChunkVisitor {
    let run: RunIdentity
    let chunk: ChunkID
    let rows: [UInt32]
    private(set) var sample: RowSampleFrame?

    /// A sampler for `frame` at `rate`; nil when the rate or the chunk's softmax outputs leave
    /// nothing to sample.
    init?(frame: ChunkFrame, rate: Double) {
        let count = RowSampleFrame.sampleSize(rowCount: Int(frame.id.rowCount), rate: rate)
        guard count > 0, frame.sourceClasses > 0 else { return nil }
        run = frame.run
        chunk = frame.id
        rows = RowSampleFrame.sampledRows(run: frame.run.id, chunk: frame.id, count: count)
    }

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        let z = chunk.sourceClasses
        var values: [Double] = []
        values.reserveCapacity(rows.count * z)
        for row in rows {
            let start = Int(row) * z
            for source in 0..<z { values.append(Double(chunk.probabilities[start + source])) }
        }
        sample = RowSampleFrame(
            run: run, chunk: self.chunk, sourceClasses: z, rows: rows, labels: rows.map { chunk.labels[Int($0)] },
            probabilities: values)
    }
}
