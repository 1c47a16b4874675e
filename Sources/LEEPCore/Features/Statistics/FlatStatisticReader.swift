/// Reads a statistic's flat form (a partial frame's section) and checks what every statistic's
/// flat form must satisfy, so that each statistic says only what is its own.
struct FlatStatisticReader {
    private let values: [Double]
    private var cursor = 0
    private let sampleCount: Int
    private let targetClasses: Int

    /// Checks the shape, the length (`expected`) and that every value is finite.
    init(
        _ values: [Double], expected: Int, sampleCount: Int, featureWidth: Int, targetClasses: Int
    ) throws(FeatureStatisticsError) {
        guard featureWidth > 0, targetClasses > 0, sampleCount >= 0 else {
            throw .invalid("feature width \(featureWidth), target classes \(targetClasses), samples \(sampleCount)")
        }
        guard values.count == expected else {
            throw .invalid("\(values.count) values where \(targetClasses) classes of \(featureWidth) features make \(expected)")
        }
        if let bad = values.firstIndex(where: { !$0.isFinite }) {
            throw .invalid("value \(bad) is \(values[bad])")
        }
        self.values = values
        self.sampleCount = sampleCount
        self.targetClasses = targetClasses
    }

    /// The next `count` values.
    mutating func take(_ count: Int) -> [Double] {
        defer { cursor += count }
        return Array(values[cursor..<(cursor + count)])
    }

    /// The next Y values as class counts: whole numbers ≥ 0 adding up to the sample count.
    mutating func classCounts() throws(FeatureStatisticsError) -> [Int] {
        var counts: [Int] = []
        var total = 0
        for (c, count) in take(targetClasses).enumerated() {
            // No more than the samples each, so that their sum cannot overflow either.
            guard count >= 0, count == count.rounded(), count <= Double(sampleCount) else {
                throw .invalid("class \(c) has a count of \(count) of \(sampleCount) samples")
            }
            counts.append(Int(count))
            total += Int(count)
            guard total <= sampleCount else {
                throw .invalid("the class counts add up to more than the \(sampleCount) samples")
            }
        }
        guard total == sampleCount else {
            throw .invalid("the class counts add up to \(total), not the \(sampleCount) samples")
        }
        return counts
    }

    /// Reads the upper triangle of a D×D matrix, row by row ((i, j) for j ≥ i), into the
    /// row-major `matrix` at `offset`; a negative diagonal entry (a sum of squares) is refused,
    /// named by `name`.
    mutating func upperTriangle(into matrix: inout [Double], at offset: Int, dimension d: Int, name: String) throws(FeatureStatisticsError) {
        for i in 0..<d {
            let start = offset + i * d
            matrix.replaceSubrange((start + i)..<(start + d), with: take(d - i))
            guard matrix[start + i] >= 0 else { throw .invalid("\(name) of feature \(i) is \(matrix[start + i])") }
        }
    }

    /// Each array of `perClass` holds Y equal blocks, one per class: those of a class with no
    /// sample must be zero.
    func requireEmptyClassesZero(_ counts: [Int], _ perClass: [[Double]]) throws(FeatureStatisticsError) {
        for values in perClass {
            let stride = values.count / counts.count
            for c in counts.indices where counts[c] == 0 {
                guard values[(c * stride)..<((c + 1) * stride)].allSatisfy({ $0 == 0 }) else {
                    throw .invalid("class \(c) has no sample but statistics that are not zero")
                }
            }
        }
    }
}

extension Array where Element == Double {
    /// Appends the upper triangle of the D×D row-major matrix at `offset` of `matrix`, row by
    /// row: what `FlatStatisticReader.upperTriangle` reads back.
    mutating func appendUpperTriangle(of matrix: [Double], at offset: Int, dimension d: Int) {
        for i in 0..<d { self += matrix[(offset + i * d + i)..<(offset + (i + 1) * d)] }
    }
}
