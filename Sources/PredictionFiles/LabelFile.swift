import LEEPCore

/// A file of n target labels (any integer type, 1-D), every label checked against [0, Y) once,
/// before anything is scored.
public struct LabelFile: Sendable {
    /// The memory-mapped labels.
    public let array: NumPyArray
    /// Y, given or max label + 1.
    public let targetClasses: Int

    /// The file's path.
    public var path: String { array.path }
    /// n.
    public var count: Int { array.shape[0] }

    /// Opens the file and checks every label; `targetClasses` nil means max label + 1.
    public init(path: String, targetClasses: Int? = nil) throws(FileError) {
        array = try NumPyArray(
            path: path, dtypes: Set(NumPyDType.allCases.filter { !$0.isFloatingPoint }),
            expected: "integer labels (int8 to int64 or uint8 to uint64)")
        guard array.shape.count == 1 else {
            throw FileError(path: path, problem: .wrongDimensions(shape: array.shape, expected: 1))
        }
        self.targetClasses = try Self.check(array, targetClasses: targetClasses)
    }

    /// Checks every label against [0, Y) and returns Y.
    private static func check(_ labels: NumPyArray, targetClasses: Int?) throws(FileError) -> Int {
        var largest: Int64 = -1
        // Without --target-classes, any label that fits the core's Int32 is a class index.
        let limit = targetClasses ?? Int(Int32.max)
        for row in 0..<labels.shape[0] {
            let label = labels.label(at: row)
            let problem: RowProblem? =
                if label < 0 { .negativeLabel(label: label) }
                else if label >= Int64(limit) { .labelOutOfRange(label: label, targetClasses: limit) }
                else { nil }
            if let problem {
                throw FileError(path: labels.path, problem: .invalidRow(InvalidRow(row: row, problem: problem)))
            }
            largest = max(largest, label)
        }
        return targetClasses ?? Int(largest + 1)
    }

    /// Labels `rows` widened to the core's Int32 into `destination` (at least `rows.count` long).
    public func copy(rows: Range<Int>, into destination: UnsafeMutableBufferPointer<Int32>) {
        for (offset, row) in rows.enumerated() { destination[offset] = Int32(array.label(at: row)) }
    }
}
