import CRowKernels

/// A floating-point type that softmax outputs may be stored in: `Float16`, `Float` or `Double`.
///
/// Every value is widened exactly to `Double` before it is summed, so the element type of the
/// input changes the input, never the arithmetic (docs/leep.md: float64 accumulation).
///
/// The per-row loops of both passes are `CRowKernels`' C functions for the type, compiled for
/// several instruction sets (the header says why).
public protocol ProbabilityScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    /// The sum, minimum, maximum and first argmax of `count` values at `row`, in one read.
    static func summarise(_ row: UnsafePointer<Self>, count: Int) -> leep_row_summary

    /// Pass 1 over a chunk's rows in `order` (or front to back): `leep_rows_add_f32` and its twins.
    static func addRows(
        _ rows: UnsafePointer<Self>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, tolerance: Double, joint: UnsafeMutablePointer<Double>,
        counts: UnsafeMutablePointer<Int64>
    ) -> Int

    /// Pass 2's EEP_i of a chunk's rows in `order` (or front to back): `leep_rows_eep_f32` and its twins.
    static func expectedPredictions(
        _ rows: UnsafePointer<Self>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, table: UnsafePointer<Double>, into eeps: UnsafeMutablePointer<Double>
    )
}

extension Float: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(_ row: UnsafePointer<Float>, count: Int) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f32(row, count, nil, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func addRows(
        _ rows: UnsafePointer<Float>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, tolerance: Double, joint: UnsafeMutablePointer<Double>,
        counts: UnsafeMutablePointer<Int64>
    ) -> Int {
        leep_rows_add_f32(rows, rowCount, count, labels, order, tolerance, joint, counts)
    }

    @inlinable @inline(__always)
    public static func expectedPredictions(
        _ rows: UnsafePointer<Float>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, table: UnsafePointer<Double>, into eeps: UnsafeMutablePointer<Double>
    ) {
        leep_rows_eep_f32(rows, rowCount, count, labels, order, table, eeps)
    }
}

extension Double: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(_ row: UnsafePointer<Double>, count: Int) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f64(row, count, nil, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func addRows(
        _ rows: UnsafePointer<Double>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, tolerance: Double, joint: UnsafeMutablePointer<Double>,
        counts: UnsafeMutablePointer<Int64>
    ) -> Int {
        leep_rows_add_f64(rows, rowCount, count, labels, order, tolerance, joint, counts)
    }

    @inlinable @inline(__always)
    public static func expectedPredictions(
        _ rows: UnsafePointer<Double>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, table: UnsafePointer<Double>, into eeps: UnsafeMutablePointer<Double>
    ) {
        leep_rows_eep_f64(rows, rowCount, count, labels, order, table, eeps)
    }
}

extension Float16: ProbabilityScalar {
    @inlinable @inline(__always)
    public static func summarise(_ row: UnsafePointer<Float16>, count: Int) -> leep_row_summary {
        var summary = leep_row_summary()
        leep_row_summary_f16(UnsafeRawPointer(row).assumingMemoryBound(to: UInt16.self), count, nil, &summary)
        return summary
    }

    @inlinable @inline(__always)
    public static func addRows(
        _ rows: UnsafePointer<Float16>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, tolerance: Double, joint: UnsafeMutablePointer<Double>,
        counts: UnsafeMutablePointer<Int64>
    ) -> Int {
        leep_rows_add_f16(UnsafeRawPointer(rows).assumingMemoryBound(to: UInt16.self), rowCount, count, labels, order, tolerance, joint, counts)
    }

    @inlinable @inline(__always)
    public static func expectedPredictions(
        _ rows: UnsafePointer<Float16>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, table: UnsafePointer<Double>, into eeps: UnsafeMutablePointer<Double>
    ) {
        leep_rows_eep_f16(UnsafeRawPointer(rows).assumingMemoryBound(to: UInt16.self), rowCount, count, labels, order, table, eeps)
    }
}
