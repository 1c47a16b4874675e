import LEEPCore

/// Kind 1: consecutive rows of one shard of a run — labels, and the source model's softmax
/// outputs, its penultimate-layer features or both — as a producer publishes them to the chunks
/// topic. The version follows what the chunk carries: softmax outputs alone are version 1
/// (byte-identical to older builds, so their workers still read such runs), softmax outputs and
/// features version 2, features alone (a model without a classifier head, Z = 0) version 3.
public struct ChunkFrame: Sendable {
    /// The run and the pair it scores.
    public let run: RunIdentity
    /// How many shards the run has.
    public let shardCount: UInt32
    /// Which rows of which shard.
    public let id: ChunkID
    /// Z; 0 when the chunk carries no softmax outputs (a version-3 frame).
    public let sourceClasses: Int
    /// Y as the producer knows it (given, or the largest label of its shard + 1).
    public let targetClasses: Int
    /// The labels, one per row.
    public let labels: [Int32]
    /// θ, row-major, in the type it was published in; nil when the chunk carries none (a
    /// version-3 frame, features alone).
    public let probabilities: ProbabilityValues?
    /// The rows' features, row-major, in the type they were published in; nil when the chunk
    /// carries none (a version-1 frame). A chunk carries θ, features or both.
    public let features: FeatureRows?

    /// θ (or features) as published: the element type is chosen by the producer.
    public enum ProbabilityValues: Sendable {
        case float16([Float16])
        case float32([Float])
        case float64([Double])

        /// The element type, as the wire's `dtype` code names it.
        public var type: ProbabilityType {
            switch self {
            case .float16: .float16
            case .float32: .float32
            case .float64: .float64
            }
        }

        /// The number of values.
        public var count: Int {
            switch self {
            case .float16(let values): values.count
            case .float32(let values): values.count
            case .float64(let values): values.count
            }
        }
    }

    /// The wire version of a chunk of softmax outputs alone.
    static let softmaxVersion: UInt8 = 1
    /// The wire version of a chunk of softmax outputs and features.
    static let softmaxAndFeaturesVersion: UInt8 = 2
    /// The wire version of a chunk of features alone (Z = 0).
    static let featuresOnlyVersion: UInt8 = 3

    /// Encodes rows straight from a view (for example of a memory-mapped file), without
    /// building a `ChunkFrame` first: version 2 with `features` (exactly `chunk.rowCount` rows
    /// of them), version 1 without.
    public static func encode<Scalar: ProbabilityScalar>(
        run: RunIdentity, shard: UInt32, shardCount: UInt32, targetClasses: Int, rows chunk: PredictionChunk<Scalar>,
        features: FeatureRowsView? = nil
    ) -> [UInt8] {
        let type: ProbabilityType = switch MemoryLayout<Scalar>.size {
        case 2: .float16
        case 4: .float32
        default: .float64
        }
        if let features {
            precondition(
                features.bytes.count == chunk.rowCount * features.width * features.type.size,
                "\(features.bytes.count) bytes of features do not make \(chunk.rowCount) rows of \(features.width) \(features.type.size)-byte values")
        }
        var writer = fixedFields(
            version: features == nil ? softmaxVersion : softmaxAndFeaturesVersion, run: run, shard: shard,
            shardCount: shardCount, firstRow: chunk.firstRow, rowCount: chunk.rowCount, sourceClasses: chunk.sourceClasses,
            targetClasses: targetClasses,
            payloadBytes: chunk.rowCount * 4 + chunk.probabilities.count * type.size + (features?.bytes.count ?? 0))
        writer.write(type.rawValue)
        if let features {
            writer.write(UInt32(features.width))
            writer.write(features.type.rawValue)
        }
        writer.alignTo8()
        // Labels, θ and features are copied as they lie in memory: the wire is little-endian,
        // like every platform this runs on.
        writer.write(raw: UnsafeRawBufferPointer(chunk.labels))
        writer.alignTo8()
        writer.write(raw: UnsafeRawBufferPointer(chunk.probabilities))
        if let features {
            writer.alignTo8()
            writer.write(raw: features.bytes)
        }
        return writer.bytes
    }

    /// Encodes rows of features alone — a source model without a classifier head — straight
    /// from a view, as a version-3 frame: `source_classes` 0, no `dtype` and no θ. `labels`
    /// holds the rows' labels (at least one), `features` exactly as many rows.
    public static func encode(
        run: RunIdentity, shard: UInt32, shardCount: UInt32, targetClasses: Int, firstRow: Int,
        labels: UnsafeBufferPointer<Int32>, features: FeatureRowsView
    ) -> [UInt8] {
        precondition(!labels.isEmpty, "a chunk has at least one row")
        precondition(
            features.bytes.count == labels.count * features.width * features.type.size,
            "\(features.bytes.count) bytes of features do not make \(labels.count) rows of \(features.width) \(features.type.size)-byte values")
        var writer = fixedFields(
            version: featuresOnlyVersion, run: run, shard: shard, shardCount: shardCount, firstRow: firstRow,
            rowCount: labels.count, sourceClasses: 0, targetClasses: targetClasses,
            payloadBytes: labels.count * 4 + features.bytes.count)
        writer.write(UInt32(features.width))
        writer.write(features.type.rawValue)
        writer.alignTo8()
        writer.write(raw: UnsafeRawBufferPointer(labels))
        writer.alignTo8()
        writer.write(raw: features.bytes)
        return writer.bytes
    }

    /// A frame of `version` started with the fields every version shares, up to and including
    /// `target_classes`.
    private static func fixedFields(
        version: UInt8, run: RunIdentity, shard: UInt32, shardCount: UInt32, firstRow: Int, rowCount: Int,
        sourceClasses: Int, targetClasses: Int, payloadBytes: Int
    ) -> ByteWriter {
        var writer = ByteWriter(
            kind: .chunk, version: version,
            capacity: 128 + run.id.utf8.count + run.model.utf8.count + run.dataset.utf8.count + payloadBytes)
        writer.write(run)
        writer.write(shard)
        writer.write(shardCount)
        writer.write(UInt64(firstRow))
        writer.write(UInt32(rowCount))
        writer.write(UInt32(sourceClasses))
        writer.write(UInt32(targetClasses))
        return writer
    }

    init(reading reader: inout ByteReader, version: UInt8) throws(FrameError) {
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
        (targetClasses, sourceClasses) = try reader.readShape(targetFirst: false, allowingNoSourceClasses: true)
        // The version says what the chunk carries; Z must agree with it.
        switch (version, sourceClasses) {
        case (Self.softmaxVersion, 0):
            throw .invalidValue(field: "source_classes", reason: FrameError.noSourceClassesWithoutFeatures)
        case (Self.softmaxAndFeaturesVersion, 0):
            throw .invalidValue(field: "source_classes", reason: "0 in a version-2 chunk: a chunk of features alone is version 3")
        case (Self.featuresOnlyVersion, 1...):
            throw .invalidValue(
                field: "source_classes", reason: "\(sourceClasses) in a version-3 chunk, which carries features alone: must be 0")
        default:
            break
        }
        // θ's type, except in version 3 (no θ); versions 2 and 3: the features' width and type.
        let type = version == Self.featuresOnlyVersion ? nil : try reader.readType("dtype")
        let featureLayout: (width: Int, type: ProbabilityType)? = if version >= Self.softmaxAndFeaturesVersion {
            (try reader.readFeatureWidth(targetClasses: targetClasses, required: true), try reader.readType("feature_dtype"))
        } else {
            nil
        }
        try reader.skipPadding()
        labels = try reader.readArray(Int32.self, count: Int(rowCount), "labels")
        try reader.skipPadding()
        if let type {
            // Without features θ ends the frame and must take exactly the bytes left; with them,
            // it must leave room for them (their own check follows).
            guard let byteCount = Self.byteCount(rows: rowCount, width: sourceClasses, type: type),
                  featureLayout == nil ? byteCount == reader.remaining : byteCount <= reader.remaining
            else {
                throw .invalidValue(
                    field: "probabilities",
                    reason: "\(rowCount) rows × \(sourceClasses) classes × \(type.size) bytes \(featureLayout == nil ? "do not match" : "exceed") the \(reader.remaining) bytes left")
            }
            probabilities = Self.values(try reader.readRaw(count: byteCount, "probabilities"), type)
        } else {
            probabilities = nil
        }
        if let featureLayout {
            // After θ, its padding; in version 3 the labels' padding has aligned them already.
            try reader.skipPadding()
            // The features end the frame: they must take exactly the bytes left.
            guard let featureBytes = Self.byteCount(rows: rowCount, width: featureLayout.width, type: featureLayout.type),
                  featureBytes == reader.remaining
            else {
                throw .invalidValue(
                    field: "features",
                    reason: "\(rowCount) rows × \(featureLayout.width) features × \(featureLayout.type.size) bytes do not match the \(reader.remaining) bytes left")
            }
            features = FeatureRows(
                width: featureLayout.width, values: Self.values(try reader.readRaw(count: featureBytes, "features"), featureLayout.type))
        } else {
            features = nil
        }
    }

    /// rows × width × the type's size, or nil when it overflows (a frame's claim, not checked yet).
    private static func byteCount(rows: UInt32, width: Int, type: ProbabilityType) -> Int? {
        let (values, overflow) = Int(rows).multipliedReportingOverflow(by: width)
        let bytes = values.multipliedReportingOverflow(by: type.size)
        return overflow || bytes.overflow ? nil : bytes.partialValue
    }

    /// The values of `type` in `raw`, copied.
    private static func values(_ raw: UnsafeRawBufferPointer, _ type: ProbabilityType) -> ProbabilityValues {
        switch type {
        case .float16: .float16(copy(raw, as: Float16.self))
        case .float32: .float32(copy(raw, as: Float.self))
        case .float64: .float64(copy(raw, as: Double.self))
        }
    }

    /// An aligned copy: message memory carries no alignment guarantee.
    private static func copy<T>(_ raw: UnsafeRawBufferPointer, as _: T.Type) -> [T] {
        [T](unsafeUninitializedCapacity: raw.count / MemoryLayout<T>.stride) { buffer, count in
            UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
            count = raw.count / MemoryLayout<T>.stride
        }
    }

    /// Shows the rows to `visitor` as one `PredictionChunk` of their concrete type. Only for a
    /// chunk that carries softmax outputs (`probabilities` not nil): a caller handed a chunk of
    /// features alone decides what that means for it before visiting.
    ///
    /// Inlinable so that the caller's visitor, and the numerics it calls, are specialised for
    /// the element type: through an unspecialised generic call the inner loops run an order of
    /// magnitude slower.
    @inlinable
    public func visit<Visitor: ChunkVisitor>(_ visitor: inout Visitor) throws {
        guard let probabilities else { preconditionFailure("\(id) carries no softmax outputs to visit") }
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

/// A chunk's features, as decoded: one row of `width` values per row of the chunk, row-major
/// (C order), in the type the producer published them in — the source model's penultimate-layer
/// activations, from which workers accumulate the statistics of LogME and the H-score.
public struct FeatureRows: Sendable {
    /// D, the number of features a row (at least 1).
    public let width: Int
    /// rows × `width` values, row-major.
    public let values: ChunkFrame.ProbabilityValues

    /// Creates features of `width` values a row; `values.count` must be a multiple of `width`.
    public init(width: Int, values: ChunkFrame.ProbabilityValues) {
        precondition(width >= 1, "a feature row has at least one value")
        precondition(values.count % width == 0, "\(values.count) feature values do not make rows of \(width)")
        self.width = width
        self.values = values
    }

    /// The number of rows.
    public var rowCount: Int { values.count / width }

    /// Shows the values to `body` as a `FeatureRowsView`, for instance to encode them again.
    public func withView<Result>(_ body: (FeatureRowsView) throws -> Result) rethrows -> Result {
        switch values {
        case .float16(let values): try values.withUnsafeBytes { try body(FeatureRowsView(width: width, type: .float16, bytes: $0)) }
        case .float32(let values): try values.withUnsafeBytes { try body(FeatureRowsView(width: width, type: .float32, bytes: $0)) }
        case .float64(let values): try values.withUnsafeBytes { try body(FeatureRowsView(width: width, type: .float64, bytes: $0)) }
        }
    }
}

/// Features as they lie in memory — for example a memory-mapped .npy file of n×D activations —
/// for `ChunkFrame.encode` to copy straight into a frame: `bytes` holds exactly the chunk's rows
/// × `width` values of `type`, row-major, in the platform's (little-endian) byte order. Valid
/// only as long as the memory it points to.
public struct FeatureRowsView {
    /// D, the number of features a row (at least 1).
    public let width: Int
    /// The element type (the same codes as θ's `dtype`).
    public let type: ProbabilityType
    /// The values' bytes: rows × `width` × `type.size` of them.
    public let bytes: UnsafeRawBufferPointer

    /// Creates a view; `bytes` must hold whole rows of `width` values of `type`.
    public init(width: Int, type: ProbabilityType, bytes: UnsafeRawBufferPointer) {
        precondition(width >= 1, "a feature row has at least one value")
        precondition(bytes.count % (width * type.size) == 0, "\(bytes.count) bytes do not make rows of \(width) \(type.size)-byte values")
        self.width = width
        self.type = type
        self.bytes = bytes
    }
}
