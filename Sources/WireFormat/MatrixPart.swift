/// A contiguous range of cells of a Y×Z matrix: matrices larger than a Kafka message travel as
/// several parts (ImageNet-21k's Z = 21,843 is a real case).
public struct MatrixPart: Sendable, Equatable {
    /// The part's index, 0..<partCount.
    public let partIndex: UInt32
    /// How many parts the matrix travels in.
    public let partCount: UInt32
    /// The first cell (row-major index into Y×Z).
    public let cellStart: Int
    /// How many cells this part holds.
    public let cellCount: Int

    /// Creates a part description.
    public init(partIndex: UInt32, partCount: UInt32, cellStart: Int, cellCount: Int) {
        self.partIndex = partIndex
        self.partCount = partCount
        self.cellStart = cellStart
        self.cellCount = cellCount
    }

    /// Cuts `cells` cells of `bytesPerCell` bytes into parts whose payload stays within
    /// `maxPayloadBytes`. Always at least one part, even for an empty matrix.
    public static func split(cells: Int, bytesPerCell: Int, maxPayloadBytes: Int) -> [MatrixPart] {
        let perPart = max(1, maxPayloadBytes / bytesPerCell)
        let count = max(1, (cells + perPart - 1) / perPart)
        return (0..<count).map { index in
            let start = index * perPart
            return MatrixPart(
                partIndex: UInt32(index), partCount: UInt32(count), cellStart: start,
                cellCount: min(perPart, cells - start))
        }
    }

    func write(to writer: inout ByteWriter) {
        writer.write(partIndex)
        writer.write(partCount)
        writer.write(UInt32(cellStart))
        writer.write(UInt32(cellCount))
    }

    init(reading reader: inout ByteReader, totalCells: Int) throws(FrameError) {
        try self.init(reading: &reader)
        try check(totalCells: totalCells)
    }

    /// Reads the four fields, checking the index only: a version-3 partial learns how many
    /// cells its part's section has from the `section` byte that follows.
    init(reading reader: inout ByteReader) throws(FrameError) {
        partIndex = try reader.read(UInt32.self, "part_index")
        partCount = try reader.read(UInt32.self, "part_count")
        guard partIndex < partCount else {
            throw .invalidValue(field: "part_index", reason: "\(partIndex) is not below part_count \(partCount)")
        }
        cellStart = Int(try reader.read(UInt32.self, "cell_start"))
        cellCount = Int(try reader.read(UInt32.self, "cell_count"))
    }

    /// Fails unless the part's cells lie within the `totalCells` of its matrix (`whole` names it
    /// in the reason).
    func check(totalCells: Int, whole: String = "of the matrix") throws(FrameError) {
        guard cellStart + cellCount <= totalCells else {
            throw .invalidValue(
                field: "cell_count", reason: "cells \(cellStart)..<\(cellStart + cellCount) exceed the \(totalCells) \(whole)")
        }
    }
}
