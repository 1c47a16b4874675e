import LEEPCore

/// The versioned binary frames leepstream exchanges over Kafka (docs/wire-format.md).
///
/// Every frame starts with the same 8 bytes: the magic `LPST`, a version byte, a kind byte and
/// two reserved zero bytes. All integers and floats are little-endian; strings are a u16 byte
/// length followed by UTF-8. Arrays of numbers start at an 8-byte boundary of the frame.
public enum WireFormat {
    /// The newest frame version of any kind this build reads or writes: 3, the partial's.
    public static let version: UInt8 = 3

    /// The newest version of `kind` this build reads and writes; it reads every version from 1
    /// up to it, so that frames of older builds still read. Chunks are version 1 with softmax
    /// outputs alone (byte-identical to older builds, so older workers read feature-less runs),
    /// 2 with softmax outputs and features, 3 with features alone (Z = 0); manifests are version 2
    /// when the run carries features (Z may then be 0) and still version 1 otherwise; partials are
    /// always written as version 3 (a partial's version 2 added the run's names, version 3 the
    /// feature statistics); task results are version 2 only when they carry an SFDA mixing
    /// task's statistics.
    public static func version(of kind: FrameKind) -> UInt8 {
        switch kind {
        case .chunk, .partial: 3
        case .manifest, .taskResult: 2
        default: 1
        }
    }
    /// The four magic bytes, "LPST".
    public static let magic: [UInt8] = Array("LPST".utf8)
    /// The largest Y×Z a frame may declare: 2^26 cells (Z = 21,843 with Y up to 3,072). It
    /// bounds what a worker or aggregator allocates for one run, whatever a record claims.
    public static let maxCells = 1 << 26
    /// The largest feature width D a frame may declare: 8,192, twice the widest penultimate
    /// layers expected (~4,096). It keeps D·(D+1)/2 and Y·D far from overflowing an `Int`.
    public static let maxFeatureWidth = 1 << 13
    /// The largest number of feature statistics, `plannedFeatureValues(targetClasses:featureWidth:)`,
    /// a frame may imply: 2^27 (1 GiB of float64; D = 4,096 with Y up to 16,382, where GBC's class
    /// variances, Y·(2D + 1) values, reach it). Like
    /// `maxCells`, it bounds what a worker or aggregator allocates for one run.
    public static let maxFeatureValues = 1 << 27

    /// The most float64 values one statistic of a run of D features and Y target classes
    /// holds, over every statistic a worker gathers for that shape (`FeatureStatisticSet.plan`):
    /// what must stay within `maxFeatureValues` for the run to be scorable (a shape whose class
    /// variances could not travel would leave its run unfinishable).
    public static func plannedFeatureValues(targetClasses: Int, featureWidth: Int) -> Int {
        FeatureStatisticSet.plan(featureWidth: featureWidth, targetClasses: targetClasses)
            .map { $0.statisticType.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth) }.max()!
    }
}

/// The kind byte of a frame.
public enum FrameKind: UInt8, Sendable {
    case chunk = 1, manifest = 2, partial = 3, task = 4, conditional = 5, taskResult = 6
    case chunkRejected = 7, runMarker = 8, partitionMarker = 9, rowSample = 10
}

/// Any decoded frame.
public enum Frame: Sendable {
    case chunk(ChunkFrame)
    case manifest(ManifestFrame)
    case partial(PartialFrame)
    case task(TaskFrame)
    case conditional(ConditionalFrame)
    case taskResult(TaskResultFrame)
    case chunkRejected(ChunkRejectedFrame)
    case runMarker(RunMarkerFrame)
    case partitionMarker(PartitionMarkerFrame)
    case rowSample(RowSampleFrame)

    /// Decodes one frame; every malformed input is refused with the reason.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
        var reader = ByteReader(bytes)
        let (kind, version) = try readHeader(&reader)
        let frame: Frame
        switch kind {
        case .chunk: frame = .chunk(try ChunkFrame(reading: &reader, version: version))
        case .manifest: frame = .manifest(try ManifestFrame(reading: &reader, version: version))
        case .partial: frame = .partial(try PartialFrame(reading: &reader, version: version))
        case .task: frame = .task(try TaskFrame(reading: &reader))
        case .conditional: frame = .conditional(try ConditionalFrame(reading: &reader))
        case .taskResult: frame = .taskResult(try TaskResultFrame(reading: &reader, version: version))
        case .chunkRejected: frame = .chunkRejected(try ChunkRejectedFrame(reading: &reader))
        case .runMarker: frame = .runMarker(try RunMarkerFrame(reading: &reader))
        case .partitionMarker: frame = .partitionMarker(try PartitionMarkerFrame(reading: &reader))
        case .rowSample: frame = .rowSample(try RowSampleFrame(reading: &reader))
        }
        try reader.expectEnd()
        return frame
    }

    /// Decodes a frame held in an array (tests, fixtures).
    public static func decode(_ bytes: [UInt8]) throws(FrameError) -> Frame {
        do {
            return try bytes.withUnsafeBytes { raw in try decode(raw) }
        } catch let error as FrameError {
            throw error
        } catch {
            preconditionFailure("decode throws only FrameError")
        }
    }

    /// The frame's kind, for messages (never the frame's contents: they can be megabytes).
    public var kindName: String {
        switch self {
        case .chunk: "chunk"
        case .manifest: "manifest"
        case .partial: "partial"
        case .task: "task"
        case .conditional: "conditional"
        case .taskResult: "task result"
        case .chunkRejected: "chunk rejection"
        case .runMarker: "run marker"
        case .partitionMarker: "partition marker"
        case .rowSample: "row sample"
        }
    }

    /// The run the frame belongs to; nil for a partition marker, which belongs to none.
    public var run: String? {
        switch self {
        case .chunk(let frame): frame.run.id
        case .manifest(let frame): frame.run.id
        case .partial(let frame): frame.run
        case .task(let frame): frame.run
        case .conditional(let frame): frame.run
        case .taskResult(let frame): frame.run
        case .chunkRejected(let frame): frame.run.id
        case .runMarker(let frame): frame.run
        case .rowSample(let frame): frame.run.id
        case .partitionMarker: nil
        }
    }

    static func readHeader(_ reader: inout ByteReader) throws(FrameError) -> (kind: FrameKind, version: UInt8) {
        guard reader.remaining >= 8 else { throw .truncated(field: "header", needed: 8, available: reader.remaining) }
        let magic = try reader.readRaw(count: 4, "magic")
        guard magic.elementsEqual(WireFormat.magic) else { throw .badMagic }
        let version = try reader.read(UInt8.self, "version")
        guard (1...WireFormat.version).contains(version) else { throw .unsupportedVersion(version) }
        let kindByte = try reader.read(UInt8.self, "kind")
        guard let kind = FrameKind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        guard version <= WireFormat.version(of: kind) else { throw .unsupportedVersion(version) }
        guard try reader.read(UInt16.self, "reserved") == 0 else {
            throw .invalidValue(field: "reserved", reason: "must be 0")
        }
        return (kind, version)
    }
}

extension ByteWriter {
    /// Starts a frame of `kind`, of `version` (by default the kind's newest).
    init(kind: FrameKind, version: UInt8? = nil, capacity: Int = 256) {
        self.init(capacity: capacity)
        for byte in WireFormat.magic { write(byte) }
        write(version ?? WireFormat.version(of: kind))
        write(kind.rawValue)
        write(UInt16(0))
    }

    mutating func write(_ chunk: ChunkID) {
        write(chunk.shard)
        write(chunk.firstRow)
        write(chunk.rowCount)
    }

    mutating func write(_ location: RecordLocation) {
        write(location.partition)
        write(location.offset)
    }

    mutating func write(_ run: RunIdentity) {
        write(run.id)
        write(run.model)
        write(run.dataset)
    }
}

extension ByteReader {
    mutating func readChunkID() throws(FrameError) -> ChunkID {
        let shard = try read(UInt32.self, "shard")
        let firstRow = try read(UInt64.self, "first_row")
        let rowCount = try read(UInt32.self, "row_count")
        try ChunkID.check(firstRow: firstRow, rowCount: rowCount)
        return ChunkID(shard: shard, firstRow: firstRow, rowCount: rowCount)
    }

    /// A run id: non-empty UTF-8.
    mutating func readRunID() throws(FrameError) -> String {
        let id = try readString("run")
        guard !id.isEmpty else { throw .invalidValue(field: "run", reason: "empty") }
        return id
    }

    /// A count that must fit a signed 64-bit integer (sample counts, hits).
    mutating func readCount64(_ field: StaticString) throws(FrameError) -> UInt64 {
        let value = try read(UInt64.self, field)
        guard value <= UInt64(Int64.max) else { throw .invalidValue(field: "\(field)", reason: "\(value) is too large") }
        return value
    }

    /// Reads Y then Z (or Z then Y, by `targetFirst`) and checks Y×Z ≤ `WireFormat.maxCells`.
    /// Z may be 0 where the frame can carry features alone (`allowingNoSourceClasses`: chunk,
    /// manifest and partial, which then check Z against what else they carry).
    mutating func readShape(
        targetFirst: Bool, allowingNoSourceClasses: Bool = false
    ) throws(FrameError) -> (targetClasses: Int, sourceClasses: Int) {
        let y: Int, z: Int
        if targetFirst {
            y = try readClassCount("target_classes")
            z = try readClassCount("source_classes", allowingZero: allowingNoSourceClasses)
        } else {
            z = try readClassCount("source_classes", allowingZero: allowingNoSourceClasses)
            y = try readClassCount("target_classes")
        }
        guard y * z <= WireFormat.maxCells else {
            throw .invalidValue(field: "target_classes", reason: "\(y) × \(z) classes exceed the limit of \(WireFormat.maxCells) cells")
        }
        return (y, z)
    }

    mutating func readLocation() throws(FrameError) -> RecordLocation {
        RecordLocation(partition: try read(Int32.self, "partition"), offset: try read(Int64.self, "offset"))
    }

    mutating func readRunIdentity() throws(FrameError) -> RunIdentity {
        let id = try readRunID()
        return RunIdentity(id: id, model: try readString("model"), dataset: try readString("dataset"))
    }

    /// Reads an element-type code (`dtype`, `feature_dtype`): 1 = f16, 2 = f32, 3 = f64.
    mutating func readType(_ field: StaticString) throws(FrameError) -> ProbabilityType {
        let code = try read(UInt8.self, field)
        guard let type = ProbabilityType(rawValue: code) else { throw .invalidValue(field: "\(field)", reason: "unknown code \(code)") }
        return type
    }

    /// Reads `feature_width`, D: at least 1 where the frame's version implies features
    /// (`required`), else 0 for none; at most `WireFormat.maxFeatureWidth`, and with `targetClasses`
    /// no more than `WireFormat.maxFeatureValues` statistics (what a worker or aggregator
    /// allocates for the run's features, whatever a record claims).
    mutating func readFeatureWidth(targetClasses: Int, required: Bool) throws(FrameError) -> Int {
        let width = Int(try read(UInt32.self, "feature_width"))
        guard width > 0 || !required else { throw .invalidValue(field: "feature_width", reason: "must be at least 1") }
        guard width <= WireFormat.maxFeatureWidth else {
            throw .invalidValue(field: "feature_width", reason: "\(width) exceeds the limit of \(WireFormat.maxFeatureWidth)")
        }
        if width > 0 {
            let values = WireFormat.plannedFeatureValues(targetClasses: targetClasses, featureWidth: width)
            guard values <= WireFormat.maxFeatureValues else {
                throw .invalidValue(
                    field: "feature_width",
                    reason: "\(width) features and \(targetClasses) target classes make \(values) statistics, beyond the limit of \(WireFormat.maxFeatureValues)")
            }
        }
        return width
    }

    /// Reads a u32 class count: positive, or 0 too when `allowingZero`.
    mutating func readClassCount(_ field: StaticString, allowingZero: Bool = false) throws(FrameError) -> Int {
        let count = Int(try read(UInt32.self, field))
        guard count > 0 || allowingZero else { throw .invalidValue(field: "\(field)", reason: "must be at least 1") }
        guard count <= WireFormat.maxCells else { throw .invalidValue(field: "\(field)", reason: "\(count) is too large") }
        return count
    }
}

/// Which evaluation a record belongs to: the run id and the (model, data set) pair it scores.
public struct RunIdentity: Hashable, Sendable, Codable {
    /// The run id, unique per evaluation; shards of one run share it.
    public let id: String
    /// The source model's name.
    public let model: String
    /// The target data set's name.
    public let dataset: String

    /// Creates an identity.
    public init(id: String, model: String, dataset: String) {
        self.id = id
        self.model = model
        self.dataset = dataset
    }
}
