import Foundation

/// An array stored in a NumPy `.npy` file (format versions 1.0 to 3.0), memory-mapped.
///
/// Only what the header promises is trusted after it has been checked against the file's size,
/// so a truncated file is reported before any element is read.
public struct NumPyArray: Sendable {
    /// The path as given.
    public let path: String
    /// The element type.
    public let dtype: NumPyDType
    /// The shape, outermost dimension first.
    public let shape: [Int]
    /// The elements, C order, `dtype.size` bytes each; valid while this array exists.
    public var data: UnsafeRawBufferPointer { UnsafeRawBufferPointer(rebasing: file.bytes[dataRange]) }
    /// Where the elements lie in the file.
    private let dataRange: Range<Int>
    /// Keeps `data` mapped.
    private let file: MemoryMappedFile

    private static let magic: [UInt8] = [0x93] + Array("NUMPY".utf8)

    /// Opens and checks `path`; `dtypes` are the acceptable element types, named in errors as
    /// `expected`.
    public init(path: String, dtypes: Set<NumPyDType>, expected: String) throws(FileError) {
        self.path = path
        do {
            file = try MemoryMappedFile(path: path)
            (dtype, shape, dataRange) = try Self.parse(file.bytes, dtypes: dtypes, expected: expected)
        } catch {
            throw FileError(path: path, problem: error)
        }
    }

    /// Checks a whole file's bytes — preamble, header, and that the data the header promises is
    /// there — and returns the element type, the shape and where the elements lie. Pure, so the
    /// fuzz target (Tests/Fuzz) can feed it any bytes without a file.
    package static func parse(
        _ bytes: UnsafeRawBufferPointer, dtypes: Set<NumPyDType>, expected: String
    ) throws(FileProblem) -> (NumPyDType, [Int], Range<Int>) {
        guard bytes.count >= 10 else {
            throw .notNumPy(reason: "\(bytes.count) bytes is shorter than the .npy preamble")
        }
        guard bytes.prefix(6).elementsEqual(magic) else {
            throw .notNumPy(reason: "the file does not start with the magic string \\x93NUMPY")
        }
        let major = bytes[6], minor = bytes[7]
        let headerLength: Int
        let headerStart: Int
        switch major {
        case 1:
            headerLength = Int(bytes[8]) | Int(bytes[9]) << 8
            headerStart = 10
        case 2, 3:
            guard bytes.count >= 12 else { throw .notNumPy(reason: "the preamble is truncated") }
            headerLength = (0..<4).reduce(0) { $0 | Int(bytes[8 + $1]) << (8 * $1) }
            headerStart = 12
        default:
            throw .unsupportedVersion(major: major, minor: minor)
        }
        let dataStart = headerStart + headerLength
        guard dataStart <= bytes.count else {
            throw .truncated(expectedBytes: headerLength, availableBytes: bytes.count - headerStart)
        }
        let header = NumPyHeader(text: String(decoding: bytes[headerStart..<dataStart], as: UTF8.self))
        let descr = try header.descr()
        guard let dtype = NumPyDType(descr: descr), dtypes.contains(dtype) else {
            throw .unsupportedDType(descr: descr, expected: expected)
        }
        guard try !header.fortranOrder() else { throw .fortranOrder }
        let shape = try header.shape()
        let (elements, overflow) = shape.reduce((1, false)) { partial, dimension in
            let product = partial.0.multipliedReportingOverflow(by: dimension)
            return (product.partialValue, partial.1 || product.overflow)
        }
        let (byteCount, byteOverflow) = elements.multipliedReportingOverflow(by: dtype.size)
        guard !overflow, !byteOverflow else { throw .malformedHeader(reason: "shape \(shape) is too large") }
        let available = bytes.count - dataStart
        guard byteCount <= available else {
            throw .truncated(expectedBytes: byteCount, availableBytes: available)
        }
        return (dtype, shape, dataStart..<(dataStart + byteCount))
    }
}

/// The Python-literal dictionary that heads a `.npy` file, for example
/// `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4), }`.
///
/// NumPy writes exactly these three keys with these value forms; a full Python parser would
/// buy nothing, so each value is read by its own small rule and anything else is malformed.
struct NumPyHeader {
    let text: String

    func descr() throws(FileProblem) -> String {
        let value = try rawValue(of: "descr")
        guard let quote = value.first, quote == "'" || quote == "\"",
              let end = value.dropFirst().firstIndex(of: quote)
        else {
            // A list here is a structured dtype, which has no single element type.
            throw .unsupportedDType(descr: String(value.prefix(40)), expected: "a plain numeric dtype")
        }
        return String(value[value.index(after: value.startIndex)..<end])
    }

    func fortranOrder() throws(FileProblem) -> Bool {
        let value = try rawValue(of: "fortran_order")
        if value.hasPrefix("True") { return true }
        if value.hasPrefix("False") { return false }
        throw .malformedHeader(reason: "fortran_order is neither True nor False")
    }

    func shape() throws(FileProblem) -> [Int] {
        let value = try rawValue(of: "shape")
        guard value.first == "(", let close = value.firstIndex(of: ")") else {
            throw .malformedHeader(reason: "shape is not a tuple")
        }
        var dimensions: [Int] = []
        for part in value[value.index(after: value.startIndex)..<close].split(separator: ",") {
            let digits = part.trimmingCharacters(in: .whitespaces)
            if digits.isEmpty { continue }
            guard let dimension = Int(digits), dimension >= 0 else {
                throw .malformedHeader(reason: "shape has a dimension '\(digits)'")
            }
            dimensions.append(dimension)
        }
        return dimensions
    }

    /// The text after `'key':`, with leading spaces removed.
    private func rawValue(of key: String) throws(FileProblem) -> Substring {
        for quote in ["'", "\""] {
            if let range = text.range(of: quote + key + quote) {
                var rest = text[range.upperBound...].drop { $0 == " " }
                guard rest.first == ":" else { break }
                rest = rest.dropFirst().drop { $0 == " " }
                return rest
            }
        }
        throw .malformedHeader(reason: "no '\(key)' entry")
    }
}
