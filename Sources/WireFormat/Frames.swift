/// The versioned binary frames leepstream exchanges over Kafka (docs/wire-format.md).
///
/// Every frame starts with the same 8 bytes: the magic `LPST`, a version byte, a kind byte and
/// two reserved zero bytes. All integers and floats are little-endian; strings are a u16 byte
/// length followed by UTF-8. Arrays of numbers start at an 8-byte boundary of the frame.
public enum WireFormat {
    /// The frame version this build writes and reads.
    public static let version: UInt8 = 1
    /// The four magic bytes, "LPST".
    public static let magic: [UInt8] = Array("LPST".utf8)
}

/// The kind byte of a frame.
public enum FrameKind: UInt8, Sendable {
    case chunk = 1, manifest = 2, partial = 3, task = 4, conditional = 5, taskResult = 6
    case chunkRejected = 7, runMarker = 8
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

    /// Decodes one frame; every malformed input is refused with the reason.
    public static func decode(_ bytes: UnsafeRawBufferPointer) throws(FrameError) -> Frame {
        var reader = ByteReader(bytes)
        let kind = try readHeader(&reader)
        let frame: Frame
        switch kind {
        case .chunk: frame = .chunk(try ChunkFrame(reading: &reader))
        case .manifest: frame = .manifest(try ManifestFrame(reading: &reader))
        case .partial: frame = .partial(try PartialFrame(reading: &reader))
        case .task: frame = .task(try TaskFrame(reading: &reader))
        case .conditional: frame = .conditional(try ConditionalFrame(reading: &reader))
        case .taskResult: frame = .taskResult(try TaskResultFrame(reading: &reader))
        case .chunkRejected: frame = .chunkRejected(try ChunkRejectedFrame(reading: &reader))
        case .runMarker: frame = .runMarker(try RunMarkerFrame(reading: &reader))
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

    /// The run the frame belongs to.
    public var run: String {
        switch self {
        case .chunk(let frame): frame.run.id
        case .manifest(let frame): frame.run.id
        case .partial(let frame): frame.run
        case .task(let frame): frame.run
        case .conditional(let frame): frame.run
        case .taskResult(let frame): frame.run
        case .chunkRejected(let frame): frame.run.id
        case .runMarker(let frame): frame.run
        }
    }

    static func readHeader(_ reader: inout ByteReader) throws(FrameError) -> FrameKind {
        guard reader.remaining >= 8 else { throw .truncated(field: "header", needed: 8, available: reader.remaining) }
        let magic = try reader.readRaw(count: 4, "magic")
        guard magic.elementsEqual(WireFormat.magic) else { throw .badMagic }
        let version = try reader.read(UInt8.self, "version")
        guard version == WireFormat.version else { throw .unsupportedVersion(version) }
        let kindByte = try reader.read(UInt8.self, "kind")
        guard let kind = FrameKind(rawValue: kindByte) else { throw .unknownKind(kindByte) }
        guard try reader.read(UInt16.self, "reserved") == 0 else {
            throw .invalidValue(field: "reserved", reason: "must be 0")
        }
        return kind
    }
}

extension ByteWriter {
    /// Starts a frame of `kind`.
    init(kind: FrameKind, capacity: Int = 256) {
        self.init(capacity: capacity)
        for byte in WireFormat.magic { write(byte) }
        write(WireFormat.version)
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
        ChunkID(shard: try read(UInt32.self, "shard"), firstRow: try read(UInt64.self, "first_row"),
                rowCount: try read(UInt32.self, "row_count"))
    }

    mutating func readLocation() throws(FrameError) -> RecordLocation {
        RecordLocation(partition: try read(Int32.self, "partition"), offset: try read(Int64.self, "offset"))
    }

    mutating func readRunIdentity() throws(FrameError) -> RunIdentity {
        let id = try readString("run")
        guard !id.isEmpty else { throw .invalidValue(field: "run", reason: "empty") }
        return RunIdentity(id: id, model: try readString("model"), dataset: try readString("dataset"))
    }

    /// Reads a positive u32 class count.
    mutating func readClassCount(_ field: StaticString) throws(FrameError) -> Int {
        let count = Int(try read(UInt32.self, field))
        guard count > 0 else { throw .invalidValue(field: "\(field)", reason: "must be at least 1") }
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
