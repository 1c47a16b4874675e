import Kafka
import LEEPCore
import Logging
import PredictionFiles
import WireFormat

/// `leep produce`: publishes one shard of a run — the labels with the source model's softmax
/// outputs, its features or both (`ScoringFiles`) — as chunk frames, then the shard's manifest
/// with where every chunk landed.
///
/// The files are validated completely before the first record is sent, so a bad file
/// publishes nothing. Chunks are cut at fixed row boundaries (`rowsPerChunk`), so publishing
/// the same shard again yields the same chunk ids and the aggregator counts each once.
public struct ShardPublisher {
    /// What to publish.
    public struct Shard: Sendable {
        /// The run and the pair it scores.
        public var run: RunIdentity
        /// This shard, 0..<shardCount.
        public var index: UInt32
        /// How many shards the run has.
        public var count: UInt32
        /// Ask for EEP accuracy beside LEEP and NCE (pass 2 then costs Y dot products a row).
        public var eepAccuracy: Bool

        /// Describes a shard.
        public init(run: RunIdentity, index: UInt32, count: UInt32, eepAccuracy: Bool = false) {
            self.run = run
            self.index = index
            self.count = count
            self.eepAccuracy = eepAccuracy
        }
    }

    /// What happened.
    public struct Summary: Sendable {
        /// Rows published.
        public let rows: Int
        /// Chunk frames published.
        public let chunks: Int
        /// Bytes of chunk frames published.
        public let bytes: Int
    }

    let producer: KafkaProducer
    let topics: Topics
    let maxMessageBytes: Int
    let logger: Logger

    /// Creates a publisher; frames stay within `maxMessageBytes` (the broker's limit, 1 MB by
    /// default on Apache Kafka).
    public init(producer: KafkaProducer, topics: Topics, maxMessageBytes: Int = 1_000_000, logger: Logger) {
        self.producer = producer
        self.topics = topics
        self.maxMessageBytes = maxMessageBytes
        self.logger = logger
    }

    /// How `files` are cut: rows per chunk so that a chunk frame stays within the message limit
    /// (a header of at most a few KiB — names are short — plus 4 bytes of label, Z values and D
    /// features a row), at most `requestedRows`; and rows per send, whole chunks of about
    /// 32 MiB, so chunk boundaries stay at multiples of the chunk size from row 0.
    public static func chunking(
        of files: ScoringFiles, maxMessageBytes: Int, requestedRows: Int? = nil
    ) -> (rowsPerChunk: Int, rowsPerBatch: Int) {
        let rowBytes = files.rowBytes
        let rows = min(requestedRows ?? Int.max, max(1, (maxMessageBytes - 4096) / (rowBytes + 4)))
        return (rows, rows * max(1, (32 << 20) / (rows * rowBytes)))
    }

    /// Throws when the run's feature statistics would exceed what a worker or aggregator holds
    /// for one run (`WireFormat.plannedFeatureValues` beyond `maxFeatureValues`, or D beyond
    /// `maxFeatureWidth`): every one of them would refuse the chunks, so they are not sent.
    public static func checkFeatureShape(of files: ScoringFiles) throws(FeatureShapeTooLarge) {
        guard let features = files.features else { return }
        let (width, classes) = (features.width, files.targetClasses)
        let values = width <= WireFormat.maxFeatureWidth
            ? WireFormat.plannedFeatureValues(targetClasses: classes, featureWidth: width) : Int.max
        guard values > WireFormat.maxFeatureValues else { return }
        throw FeatureShapeTooLarge(path: features.features.path, featureWidth: width, targetClasses: classes)
    }

    /// Validates every row of `files`, then publishes every chunk and the manifest; returns
    /// when all are delivered. `progress` is called after each batch with the rows published
    /// so far. Softmax outputs go out as version-1 chunk frames (version 2 with features), and
    /// features alone as version 3.
    public func publish(
        _ files: ScoringFiles, shard: Shard, check: RowCheck, rowsPerChunk requested: Int? = nil,
        progress: (Int) -> Void = { _ in }
    ) throws -> Summary {
        // Same rules as `leep score`, before anything leaves this machine.
        try Self.checkFeatureShape(of: files)
        try files.checkRows(check)

        let (rows, batchRows) = Self.chunking(of: files, maxMessageBytes: maxMessageBytes, requestedRows: requested)
        var encoder = ChunkEncoder(shard: shard, targetClasses: files.targetClasses, features: files.features)
        var located: [LocatedChunk] = []
        var bytes = 0
        // Send in batches: one delivery wait per batch, while librdkafka pipelines within it.
        var first = 0
        while first < files.sampleCount {
            let end = min(files.sampleCount, first + batchRows)
            encoder.frames.removeAll(keepingCapacity: true)
            if let pair = files.predictions {
                try pair.forEachChunk(rows: first..<end, rowsPerChunk: rows, &encoder)
            } else if let features = files.features {
                encoder.encodeFeaturesAlone(features, rows: first..<end, rowsPerChunk: rows)
            }
            let reports = try producer.send(encoder.frames.map { OutgoingRecord(topic: topics.chunks, value: $0.bytes) })
            for (frame, report) in zip(encoder.frames, reports) {
                located.append(LocatedChunk(id: frame.id, location: RecordLocation(partition: report.partition, offset: report.offset)))
                bytes += frame.bytes.count
            }
            first = end
            progress(first)
        }
        try publishManifest(located, files: files, shard: shard)
        logger.info("published shard", metadata: [
            "run": "\(shard.run.id)", "shard": "\(shard.index)/\(shard.count)", "rows": "\(files.sampleCount)",
            "chunks": "\(located.count)",
        ])
        return Summary(rows: files.sampleCount, chunks: located.count, bytes: bytes)
    }

    private func publishManifest(_ located: [LocatedChunk], files: ScoringFiles, shard: Shard) throws {
        let perPart = max(1, (maxMessageBytes - 4096) / ManifestFrame.bytesPerChunk)
        let parts = stride(from: 0, to: max(located.count, 1), by: perPart).map { start in
            Array(located[start..<min(located.count, start + perPart)])
        }
        let records = parts.enumerated().map { index, chunks in
            OutgoingRecord(topic: topics.runs, key: shard.run.id, value: ManifestFrame(
                run: shard.run, shard: shard.index, shardCount: shard.count, sourceClasses: files.sourceClasses,
                targetClasses: files.targetClasses, shardRows: UInt64(files.sampleCount), totalChunks: UInt32(located.count),
                partIndex: UInt32(index), partCount: UInt32(parts.count), chunks: chunks,
                eepAccuracy: shard.eepAccuracy, featureWidth: files.featureWidth
            ).encoded())
        }
        try producer.send(records)
    }
}

/// Encodes each chunk it is shown as a frame, with the same rows of the features if any; or,
/// for a model without softmax outputs, chunks of the features alone.
private struct ChunkEncoder: ChunkVisitor {
    let shard: ShardPublisher.Shard
    let targetClasses: Int
    let features: FeatureFile?
    var frames: [(id: ChunkID, bytes: [UInt8])] = []
    /// One chunk's labels, widened to Int32, for chunks of features alone.
    private var chunkLabels: [Int32] = []

    init(shard: ShardPublisher.Shard, targetClasses: Int, features: FeatureFile?) {
        self.shard = shard
        self.targetClasses = targetClasses
        self.features = features
    }

    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        let id = ChunkID(shard: shard.index, firstRow: UInt64(chunk.firstRow), rowCount: UInt32(chunk.rowCount))
        let view = features.map { file in
            FeatureRowsView(
                width: file.width, type: ProbabilityType(file.features.dtype),
                bytes: file.bytes(rows: chunk.firstRow..<(chunk.firstRow + chunk.rowCount)))
        }
        frames.append((id, ChunkFrame.encode(
            run: shard.run, shard: shard.index, shardCount: shard.count, targetClasses: targetClasses, rows: chunk,
            features: view)))
    }

    /// Encodes `rows` of `file`, features alone, as consecutive chunks of at most `rowsPerChunk`
    /// rows (version-3 frames).
    mutating func encodeFeaturesAlone(_ file: FeatureFile, rows: Range<Int>, rowsPerChunk: Int) {
        let view = { (rows: Range<Int>) in
            FeatureRowsView(width: file.width, type: ProbabilityType(file.features.dtype), bytes: file.bytes(rows: rows))
        }
        var first = rows.lowerBound
        while first < rows.upperBound {
            let chunkRows = first..<min(rows.upperBound, first + rowsPerChunk)
            if chunkLabels.count < chunkRows.count { chunkLabels = [Int32](repeating: 0, count: chunkRows.count) }
            let bytes = chunkLabels.withUnsafeMutableBufferPointer { buffer in
                file.labels.copy(rows: chunkRows, into: buffer)
                return ChunkFrame.encode(
                    run: shard.run, shard: shard.index, shardCount: shard.count, targetClasses: targetClasses,
                    firstRow: chunkRows.lowerBound, labels: UnsafeBufferPointer(rebasing: buffer[0..<chunkRows.count]),
                    features: view(chunkRows))
            }
            frames.append((ChunkID(shard: shard.index, firstRow: UInt64(first), rowCount: UInt32(chunkRows.count)), bytes))
            first = chunkRows.upperBound
        }
    }
}

extension ProbabilityType {
    /// The wire's code for a floating-point .npy element type.
    init(_ dtype: NumPyDType) {
        switch dtype {
        case .float16: self = .float16
        case .float32: self = .float32
        case .float64: self = .float64
        default: preconditionFailure("feature and prediction files hold floats")
        }
    }
}

/// Features whose statistics no worker or aggregator holds for the run's shape: refused before
/// anything is published.
public struct FeatureShapeTooLarge: Error, Sendable, CustomStringConvertible {
    /// The features file.
    public let path: String
    /// D.
    public let featureWidth: Int
    /// Y.
    public let targetClasses: Int

    public var description: String {
        if featureWidth > WireFormat.maxFeatureWidth {
            return "\(path): \(featureWidth) features exceed the limit of \(WireFormat.maxFeatureWidth) per run"
        }
        let values = WireFormat.plannedFeatureValues(targetClasses: targetClasses, featureWidth: featureWidth)
        return "\(path): \(featureWidth) features and \(targetClasses) target classes make \(values) statistics per run, "
            + "beyond the limit of \(WireFormat.maxFeatureValues) a worker or aggregator holds; send fewer features "
            + "(a projection of them) or fewer target classes"
    }
}
