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

// The standard library's `SIMD.min()`/`max()` and `pointwiseMin`/`pointwiseMax` are generic
// over the scalar and are not specialised across modules: they cost more than the arithmetic of
// a row. These are the same reductions, written out so they inline into vector code.

/// The largest lane of `lanes` (NaN lanes are ignored unless all are NaN).
@inlinable @inline(__always)
func largestLane(_ lanes: SIMD8<Double>) -> Double {
    let four = lanes.lowHalf.replacing(with: lanes.highHalf, where: lanes.highHalf .> lanes.lowHalf)
    let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .> four.lowHalf)
    return Swift.max(two[0], two[1])
}

/// The smallest lane of `lanes` (NaN lanes are ignored unless all are NaN).
@inlinable @inline(__always)
func smallestLane(_ lanes: SIMD8<Double>) -> Double {
    let four = lanes.lowHalf.replacing(with: lanes.highHalf, where: lanes.highHalf .< lanes.lowHalf)
    let two = four.lowHalf.replacing(with: four.highHalf, where: four.highHalf .< four.lowHalf)
    return Swift.min(two[0], two[1])
}
