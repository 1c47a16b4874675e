import CRowKernels

/// A floating-point type that softmax outputs may be stored in: `Float16`, `Float` or `Double`.
///
/// Every value is widened exactly to `Double` before it is summed, so the element type of the
/// input changes the input, never the arithmetic (docs/leep.md: float64 accumulation).
///
/// The per-row loops of both passes are `CRowKernels`' C functions for the type, compiled for
/// several instruction sets (the header says why).
public protocol ProbabilityScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    /// The sum, minimum, maximum and first argmax of `count` values at `row`, in one read; with
    /// `joint`, also joint[k] += row[k] (widened) in the same read.
    static func summarise(
        _ row: UnsafePointer<Self>, count: Int, addingTo joint: UnsafeMutablePointer<Double>?
    ) -> leep_row_summary

    /// Σ_k row[k] · weights[k] in float64.
    static func dot(_ row: UnsafePointer<Self>, _ weights: UnsafePointer<Double>, count: Int) -> Double
}

extension Float: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(
        _ row: UnsafePointer<Float>, count: Int, addingTo joint: UnsafeMutablePointer<Double>?
    ) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f32(row, count, joint, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func dot(_ row: UnsafePointer<Float>, _ weights: UnsafePointer<Double>, count: Int) -> Double {
        leep_row_dot_f32(row, weights, count)
    }
}

extension Double: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(
        _ row: UnsafePointer<Double>, count: Int, addingTo joint: UnsafeMutablePointer<Double>?
    ) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f64(row, count, joint, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func dot(_ row: UnsafePointer<Double>, _ weights: UnsafePointer<Double>, count: Int) -> Double {
        leep_row_dot_f64(row, weights, count)
    }
}

extension Float16: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(
        _ row: UnsafePointer<Float16>, count: Int, addingTo joint: UnsafeMutablePointer<Double>?
    ) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f16(UnsafeRawPointer(row).assumingMemoryBound(to: UInt16.self), count, joint, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func dot(_ row: UnsafePointer<Float16>, _ weights: UnsafePointer<Double>, count: Int) -> Double {
        leep_row_dot_f16(UnsafeRawPointer(row).assumingMemoryBound(to: UInt16.self), weights, count)
    }
}
