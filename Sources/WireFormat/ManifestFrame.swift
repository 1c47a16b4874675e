/// Kind 2: a shard's list of chunks and where each landed, published once the shard's chunks
/// are all delivered. Long lists are split into parts; the shard's manifest is complete when
/// all `partCount` parts are in. A manifest of a run with features is a version-2 frame (it
/// carries the feature width, and Z may be 0: a run of features alone); one without is written
/// as version 1, as older builds wrote it.
public struct ManifestFrame: Sendable, Equatable {
    /// The run and the pair it scores.
    public let run: RunIdentity
    /// This shard.
    public let shard: UInt32
    /// How many shards the run has.
    public let shardCount: UInt32
    /// Z; 0 for a run of features alone (the model has no classifier head).
    public let sourceClasses: Int
    /// Y as this shard's producer knows it.
    public let targetClasses: Int
    /// The shard's rows.
    public let shardRows: UInt64
    /// The shard's number of chunks, over all parts.
    public let totalChunks: UInt32
    /// This part's index, 0..<partCount.
    public let partIndex: UInt32
    /// How many parts the manifest has.
    public let partCount: UInt32
    /// This part's chunks and their locations.
    public let chunks: [LocatedChunk]
    /// The producer asks for EEP accuracy: pass 2 then computes Y dot products a sample instead
    /// of the one LEEP needs. A run computes it when any of its manifests asks.
    public let eepAccuracy: Bool
    /// D, the number of features a row the run's chunks carry; 0 when they carry none.
    public let featureWidth: Int

    /// Bit 0 of the `flags` byte: `eepAccuracy`. The other bits are reserved and must be 0.
    static let eepAccuracyFlag: UInt8 = 1

    /// Creates a manifest part; a run sends softmax outputs (`sourceClasses` ≥ 1), features
    /// (`featureWidth` ≥ 1) or both.
    public init(
        run: RunIdentity, shard: UInt32, shardCount: UInt32, sourceClasses: Int, targetClasses: Int,
        shardRows: UInt64, totalChunks: UInt32, partIndex: UInt32, partCount: UInt32, chunks: [LocatedChunk],
        eepAccuracy: Bool = false, featureWidth: Int = 0
    ) {
        precondition(featureWidth >= 0, "a feature width is not negative")
        precondition(sourceClasses >= 1 || featureWidth >= 1, "a run sends softmax outputs, features or both")
        self.run = run
        self.shard = shard
        self.shardCount = shardCount
        self.sourceClasses = sourceClasses
        self.targetClasses = targetClasses
        self.shardRows = shardRows
        self.totalChunks = totalChunks
        self.partIndex = partIndex
        self.partCount = partCount
        self.chunks = chunks
        self.eepAccuracy = eepAccuracy
        self.featureWidth = featureWidth
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .manifest, version: featureWidth > 0 ? 2 : 1, capacity: 96 + chunks.count * 28)
        writer.write(run)
        writer.write(shard)
        writer.write(shardCount)
        writer.write(UInt32(sourceClasses))
        writer.write(UInt32(targetClasses))
        writer.write(shardRows)
        writer.write(totalChunks)
        writer.write(partIndex)
        writer.write(partCount)
        writer.write(eepAccuracy ? Self.eepAccuracyFlag : 0)
        if featureWidth > 0 { writer.write(UInt32(featureWidth)) }
        writer.write(UInt32(chunks.count))
        for chunk in chunks {
            writer.write(chunk.id.firstRow)
            writer.write(chunk.id.rowCount)
            writer.write(chunk.location)
        }
        return writer.bytes
    }

    /// Bytes per listed chunk on the wire.
    public static let bytesPerChunk = 24

    init(reading reader: inout ByteReader, version: UInt8) throws(FrameError) {
        run = try reader.readRunIdentity()
        shard = try reader.read(UInt32.self, "shard")
        shardCount = try reader.read(UInt32.self, "shard_count")
        guard shard < shardCount else {
            throw .invalidValue(field: "shard", reason: "\(shard) is not below shard_count \(shardCount)")
        }
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: false, allowingNoSourceClasses: true)
        // Z = 0 needs features, which only version 2 declares (and there D ≥ 1).
        guard sourceClasses > 0 || version >= 2 else {
            throw .invalidValue(field: "source_classes", reason: FrameError.noSourceClassesWithoutFeatures)
        }
        shardRows = try reader.read(UInt64.self, "shard_rows")
        totalChunks = try reader.read(UInt32.self, "total_chunks")
        partIndex = try reader.read(UInt32.self, "part_index")
        partCount = try reader.read(UInt32.self, "part_count")
        guard partIndex < partCount else {
            throw .invalidValue(field: "part_index", reason: "\(partIndex) is not below part_count \(partCount)")
        }
        let flags = try reader.read(UInt8.self, "flags")
        guard flags & ~Self.eepAccuracyFlag == 0 else {
            throw .invalidValue(field: "flags", reason: "reserved bits set in \(flags)")
        }
        eepAccuracy = flags & Self.eepAccuracyFlag != 0
        featureWidth = version >= 2 ? try reader.readFeatureWidth(targetClasses: targetClasses, required: true) : 0
        let count = try reader.readCount("chunk_count", elementSize: Self.bytesPerChunk)
        var chunks: [LocatedChunk] = []
        chunks.reserveCapacity(count)
        for _ in 0..<count {
            let firstRow = try reader.read(UInt64.self, "first_row")
            let rowCount = try reader.read(UInt32.self, "row_count")
            try ChunkID.check(firstRow: firstRow, rowCount: rowCount)
            chunks.append(LocatedChunk(
                id: ChunkID(shard: shard, firstRow: firstRow, rowCount: rowCount), location: try reader.readLocation()))
        }
        self.chunks = chunks
    }
}
