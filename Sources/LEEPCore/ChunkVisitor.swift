/// Something that consumes rows chunk by chunk, whatever the element type they are stored in.
///
/// Swift closures cannot be generic, so code that holds rows of a type known only at run time
/// (a `.npy` file, a chunk frame) calls `visit` with the concrete type; the visitor is
/// specialised for each.
public protocol ChunkVisitor {
    /// Called once per chunk, in row order. An `InvalidRow` thrown here is reported against the
    /// data it concerns; any other error is passed through.
    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws
}
