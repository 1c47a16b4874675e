/// A floating-point type that softmax outputs may be stored in: `Float16`, `Float` or `Double`.
///
/// Every value is widened exactly to `Double` before it is summed, so the element type of the
/// input changes the input, never the arithmetic (docs/leep.md: float64 accumulation).
public protocol ProbabilityScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {}

extension Float: ProbabilityScalar {}
extension Double: ProbabilityScalar {}
extension Float16: ProbabilityScalar {}

/// Loads eight consecutive scalars starting at `pointer` and widens them to `Double`.
@inlinable @inline(__always)
func widenedLanes<Scalar: ProbabilityScalar>(_ pointer: UnsafePointer<Scalar>) -> SIMD8<Double> {
    let narrow = UnsafeRawPointer(pointer).loadUnaligned(as: SIMD8<Scalar>.self)
    return SIMD8<Double>(narrow)
}
