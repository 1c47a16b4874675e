import LEEPCore

/// Kind 1: consecutive rows of one shard of a run — labels and softmax outputs — as a producer
/// publishes them to the chunks topic.
public struct ChunkFrame: Sendable {
    /// The run and the pair it scores.
    public let run: RunIdentity
    /// How many shards the run has.
    public let shardCount: UInt32
    /// Which rows of which shard.
    public let id: ChunkID
    /// Z.
    public let sourceClasses: Int
    /// Y as the producer knows it (given, or the largest label of its shard + 1).
    public let targetClasses: Int
    /// The labels, one per row.
    public let labels: [Int32]
    /// θ, row-major, in the type it was published in.
    public let probabilities: ProbabilityValues

    /// θ as published: the element type is chosen by the producer.
    public enum ProbabilityValues: Sendable {
        case float16([Float16])
        case float32([Float])
        case float64([Double])
    }

    /// Encodes rows straight from a view (for example of a memory-mapped file), without
    /// building a `ChunkFrame` first.
    public static func encode<Scalar: ProbabilityScalar>(
        run: RunIdentity, shard: UInt32, shardCount: UInt32, targetClasses: Int, rows chunk: PredictionChunk<Scalar>
    ) -> [UInt8] {
        let type: ProbabilityType = switch MemoryLayout<Scalar>.size {
        case 2: .float16
        case 4: .float32
        default: .float64
        }
        var writer = ByteWriter(
            kind: .chunk, capacity: 128 + run.id.utf8.count + run.model.utf8.count + run.dataset.utf8.count
                + chunk.rowCount * 4 + chunk.probabilities.count * type.size)
        writer.write(run)
        writer.write(shard)
        writer.write(shardCount)
        writer.write(UInt64(chunk.firstRow))
        writer.write(UInt32(chunk.rowCount))
        writer.write(UInt32(chunk.sourceClasses))
        writer.write(UInt32(targetClasses))
        writer.write(type.rawValue)
        writer.alignTo8()
        // Labels and θ are copied as they lie in memory: the wire is little-endian, like every
        // platform this runs on.
        writer.write(raw: UnsafeRawBufferPointer(chunk.labels))
        writer.alignTo8()
        writer.write(raw: UnsafeRawBufferPointer(chunk.probabilities))
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunIdentity()
        let shard = try reader.read(UInt32.self, "shard")
        shardCount = try reader.read(UInt32.self, "shard_count")
        guard shard < shardCount else {
            throw .invalidValue(field: "shard", reason: "\(shard) is not below shard_count \(shardCount)")
        }
        let firstRow = try reader.read(UInt64.self, "first_row")
        let rowCount = try reader.read(UInt32.self, "row_count")
        try ChunkID.check(firstRow: firstRow, rowCount: rowCount)
        id = ChunkID(shard: shard, firstRow: firstRow, rowCount: rowCount)
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: false)
        let typeByte = try reader.read(UInt8.self, "dtype")
        guard let type = ProbabilityType(rawValue: typeByte) else {
            throw .invalidValue(field: "dtype", reason: "unknown code \(typeByte)")
        }
        try reader.skipPadding()
        labels = try reader.readArray(Int32.self, count: Int(rowCount), "labels")
        try reader.skipPadding()
        let (values, overflow) = Int(rowCount).multipliedReportingOverflow(by: sourceClasses)
        let byteCount = values.multipliedReportingOverflow(by: type.size)
        guard !overflow, !byteCount.overflow, byteCount.partialValue == reader.remaining else {
            throw .invalidValue(
                field: "probabilities",
                reason: "\(rowCount) rows × \(sourceClasses) classes × \(type.size) bytes do not match the \(reader.remaining) bytes left")
        }
        let raw = try reader.readRaw(count: byteCount.partialValue, "probabilities")
        probabilities = switch type {
        case .float16: .float16(Self.copy(raw, as: Float16.self))
        case .float32: .float32(Self.copy(raw, as: Float.self))
        case .float64: .float64(Self.copy(raw, as: Double.self))
        }
    }

    /// An aligned copy: message memory carries no alignment guarantee.
    private static func copy<T>(_ raw: UnsafeRawBufferPointer, as _: T.Type) -> [T] {
        [T](unsafeUninitializedCapacity: raw.count / MemoryLayout<T>.stride) { buffer, count in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
            count = raw.count / MemoryLayout<T>.stride
        }
    }

    /// Shows the rows to `visitor` as one `PredictionChunk` of their concrete type.
    ///
    /// Inlinable so that the caller's visitor, and the numerics it calls, are specialised for
    /// the element type: through an unspecialised generic call the inner loops run an order of
    /// magnitude slower.
    @inlinable
    public func visit<Visitor: ChunkVisitor>(_ visitor: inout Visitor) throws {
        switch probabilities {
        case .float16(let values): try visit(values, &visitor)
        case .float32(let values): try visit(values, &visitor)
        case .float64(let values): try visit(values, &visitor)
        }
    }

    @inlinable
    func visit<Scalar: ProbabilityScalar, Visitor: ChunkVisitor>(
        _ values: [Scalar], _ visitor: inout Visitor
    ) throws {
        try values.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try visitor.visit(PredictionChunk(
                    probabilities: theta, labels: labels, sourceClasses: sourceClasses, firstRow: Int(id.firstRow)))
            }
        }
    }
}
