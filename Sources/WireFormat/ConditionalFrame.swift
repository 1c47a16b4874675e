/// Kind 5: one part of a run's final conditional P(y|z), published by the aggregator for pass 2.
public struct ConditionalFrame: Sendable, Equatable {
    /// The run id.
    public let run: String
    /// Y.
    public let targetClasses: Int
    /// Z.
    public let sourceClasses: Int
    /// Which cells this part carries.
    public let part: MatrixPart
    /// P(y|z) for the part's cells, row-major by y.
    public let values: [Double]

    /// Creates a part.
    public init(run: String, targetClasses: Int, sourceClasses: Int, part: MatrixPart, values: [Double]) {
        precondition(values.count == part.cellCount)
        self.run = run
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.part = part
        self.values = values
    }

    /// Bytes per cell on the wire.
    public static let bytesPerCell = 8

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .conditional, capacity: 64 + run.utf8.count + values.count * 8)
        writer.write(run)
        writer.write(UInt32(targetClasses))
        writer.write(UInt32(sourceClasses))
        part.write(to: &writer)
        writer.alignTo8()
        for value in values { writer.write(value) }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunID()
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: true)
        part = try MatrixPart(reading: &reader, totalCells: targetClasses * sourceClasses)
        try reader.skipPadding()
        guard reader.remaining == part.cellCount * Self.bytesPerCell else {
            throw .invalidValue(
                field: "values", reason: "\(part.cellCount) cells need \(part.cellCount * Self.bytesPerCell) bytes, \(reader.remaining) left")
        }
        values = try reader.readDoubles(count: part.cellCount, "values")
    }
}
