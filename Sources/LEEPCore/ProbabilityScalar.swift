import CRowKernels

/// A floating-point type that softmax outputs may be stored in: `Float16`, `Float` or `Double`.
///
/// Every value is widened exactly to `Double` before it is summed, so the element type of the
/// input changes the input, never the arithmetic (docs/leep.md: float64 accumulation).
///
/// The per-row loops of both passes are `CRowKernels`' C functions for the type, compiled for
/// several instruction sets (the header says why); `rowKernels` names them.
public protocol ProbabilityScalar: BinaryFloatingPoint, SIMDScalar, Codable, Sendable {
    /// The C functions for rows of this type.
    static var rowKernels: RowKernels { get }
}

/// One element type's C row functions: a row's summary, pass 1 over a chunk, pass 2's EEP_i
/// over a chunk (`CRowKernels.h` documents each).
public struct RowKernels: Sendable {
    public typealias Summary = @convention(c) (
        UnsafeRawPointer, Int, UnsafeMutablePointer<Double>?, UnsafeMutablePointer<leep_row_summary>
    ) -> Void
    public typealias AddRows = @convention(c) (
        UnsafeRawPointer, Int, Int, UnsafePointer<Int32>, UnsafePointer<Int32>?, Double,
        UnsafeMutablePointer<Double>, UnsafeMutablePointer<Int64>
    ) -> Int
    public typealias ExpectedPredictions = @convention(c) (
        UnsafeRawPointer, Int, Int, UnsafePointer<Int32>, UnsafePointer<Int32>?, UnsafePointer<Double>,
        UnsafeMutablePointer<Double>
    ) -> Void

    @usableFromInline let summary: Summary
    @usableFromInline let addRows: AddRows
    @usableFromInline let expectedPredictions: ExpectedPredictions

    public init(summary: Summary, addRows: AddRows, expectedPredictions: ExpectedPredictions) {
        self.summary = summary
        self.addRows = addRows
        self.expectedPredictions = expectedPredictions
    }
}

extension Float: ProbabilityScalar {
    public static let rowKernels = RowKernels(
        summary: leep_row_summary_f32, addRows: leep_rows_add_f32, expectedPredictions: leep_rows_eep_f32)
}

extension Double: ProbabilityScalar {
    public static let rowKernels = RowKernels(
        summary: leep_row_summary_f64, addRows: leep_rows_add_f64, expectedPredictions: leep_rows_eep_f64)
}

extension Float16: ProbabilityScalar {
    public static let rowKernels = RowKernels(
        summary: leep_row_summary_f16, addRows: leep_rows_add_f16, expectedPredictions: leep_rows_eep_f16)
}

extension ProbabilityScalar {
    /// The sum, minimum, maximum and first argmax of `count` values at `row`, in one read.
    @inlinable
    static func summarise(_ row: UnsafePointer<Self>, count: Int) -> leep_row_summary {
        var summary = leep_row_summary()
        rowKernels.summary(row, count, nil, &summary)
        return summary
    }

    /// Pass 1 over a chunk's rows in `order` (or front to back); the position of the first
    /// refused row, or `rowCount` (`leep_rows_add_f32`).
    @inlinable
    static func addRows(
        _ rows: UnsafePointer<Self>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, tolerance: Double, joint: UnsafeMutablePointer<Double>,
        counts: UnsafeMutablePointer<Int64>
    ) -> Int {
        rowKernels.addRows(rows, rowCount, count, labels, order, tolerance, joint, counts)
    }

    /// Pass 2's EEP_i of a chunk's rows in `order` (or front to back) (`leep_rows_eep_f32`).
    @inlinable
    static func expectedPredictions(
        _ rows: UnsafePointer<Self>, rowCount: Int, count: Int, labels: UnsafePointer<Int32>,
        order: UnsafePointer<Int32>?, table: UnsafePointer<Double>, into eeps: UnsafeMutablePointer<Double>
    ) {
        rowKernels.expectedPredictions(rows, rowCount, count, labels, order, table, eeps)
    }
}
