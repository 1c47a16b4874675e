import LEEPCore

/// What is wrong with an input file, without the file's name (`FileError` adds it).
public enum FileProblem: Error, Equatable, Sendable, CustomStringConvertible {
    case cannotOpen(reason: String)
    case notNumPy(reason: String)
    case unsupportedVersion(major: UInt8, minor: UInt8)
    case malformedHeader(reason: String)
    case unsupportedDType(descr: String, expected: String)
    case fortranOrder
    case wrongDimensions(shape: [Int], expected: Int)
    case truncated(expectedBytes: Int, availableBytes: Int)
    case lengthMismatch(rows: Int, otherFile: String, otherRows: Int)
    case noRows
    case noColumns
    case noFeatures
    case invalidRow(InvalidRow)

    public var description: String {
        switch self {
        case .cannotOpen(let reason):
            return "cannot open: \(reason)"
        case .notNumPy(let reason):
            return "not a NumPy .npy file: \(reason)"
        case .unsupportedVersion(let major, let minor):
            return "unsupported .npy format version \(major).\(minor) (supported: 1.0, 2.0, 3.0)"
        case .malformedHeader(let reason):
            return "malformed .npy header: \(reason)"
        case .unsupportedDType(let descr, let expected):
            return "unsupported dtype '\(descr)'; expected \(expected)"
        case .fortranOrder:
            return "array is in Fortran (column-major) order; save it in C order, e.g. np.save(path, np.ascontiguousarray(a))"
        case .wrongDimensions(let shape, let expected):
            let shown = "(" + shape.map(String.init).joined(separator: ", ") + (shape.count == 1 ? ",)" : ")")
            return "expected a \(expected)-D array, got shape \(shown)"
        case .truncated(let expectedBytes, let availableBytes):
            return "truncated: the header promises \(expectedBytes) bytes of data but the file holds \(availableBytes)"
        case .lengthMismatch(let rows, let otherFile, let otherRows):
            return "has \(rows) rows but \(otherFile) has \(otherRows); each file must have one row per sample"
        case .noRows:
            return "has zero rows; there is nothing to score"
        case .noColumns:
            return "has zero source classes per row"
        case .noFeatures:
            return "has zero features per row"
        case .invalidRow(let error):
            return error.description
        }
    }
}

/// An input file that cannot be scored: the file's path and what is wrong with it.
public struct FileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The path as the user gave it.
    public let path: String
    /// What is wrong.
    public let problem: FileProblem

    /// Creates the error for `path`.
    public init(path: String, problem: FileProblem) {
        self.path = path
        self.problem = problem
    }

    /// "PATH: problem", the form compilers use, so editors and people can find the file.
    public var description: String { "\(path): \(problem)" }
}
