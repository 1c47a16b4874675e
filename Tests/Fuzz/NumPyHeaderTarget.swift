import PredictionFiles

/// The `.npy` preamble and header parser (`NumPyArray.parse`) on a whole file's bytes: it must
/// refuse or accept without crashing, and what it accepts must describe data that lies within
/// the file, `dtype.size` bytes for each element of the shape.
enum NumPyHeaderTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let (dtype, shape, data) = try? NumPyArray.parse(bytes, dtypes: Set(NumPyDType.allCases), expected: "any dtype") else {
            return
        }
        require(shape.allSatisfy { $0 >= 0 }, "a negative dimension in \(shape)")
        require(data.lowerBound >= 10 && data.upperBound <= bytes.count, "data \(data) outside the \(bytes.count) bytes")
        require(data.count == shape.reduce(1, *) * dtype.size, "data \(data) is not \(shape) of \(dtype)")
    }
}
