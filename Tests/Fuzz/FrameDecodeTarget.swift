import LEEPCore
import WireFormat

/// `Frame.decode` of every frame kind, on raw bytes: it must refuse or accept without crashing,
/// allocate in proportion to the bytes it is given (ops/fuzz runs it with a per-allocation limit
/// far below what trusting any declared count would need), and whatever it accepts must satisfy
/// the bounds docs/wire-format.md states and encode back to exactly the same bytes.
enum FrameDecodeTarget {
    static func run(_ bytes: UnsafeRawBufferPointer) {
        guard let frame = try? Frame.decode(bytes) else { return }
        checkBounds(frame)
        let again = encoded(frame)
        if case .partial(let partial) = frame, bytes[4] < 3 {
            // A partial of version 1 or 2 (an older worker's) is written back as version 3
            // without features (and, from version 1, with empty names), which must read back to
            // the same fields (compared encoded: NaN ≠ NaN).
            let upgraded = try? Frame.decode(again)
            require(partial.featureWidth == 0 && partial.section == .joint && upgraded.map(encoded) == again,
                    "an older partial does not upgrade")
            require(bytes[4] == 2 || (partial.model.isEmpty && partial.dataset.isEmpty), "a version-1 partial has names")
        } else {
            require(again.elementsEqual(bytes), "a decoded \(frame.kindName) frame does not encode back to its bytes")
        }
    }

    private static func checkBounds(_ frame: Frame) {
        switch frame {
        case .chunk(let chunk):
            require(chunk.targetClasses * chunk.sourceClasses <= WireFormat.maxCells, "chunk: Y×Z above maxCells")
            require(chunk.labels.count == Int(chunk.id.rowCount), "chunk: labels do not match row_count")
            require(chunk.probabilities != nil || chunk.features != nil, "chunk: neither softmax outputs nor features")
            require((chunk.sourceClasses == 0) == (chunk.probabilities == nil), "chunk: Z and θ disagree")
            if let features = chunk.features {
                require(features.rowCount == Int(chunk.id.rowCount), "chunk: feature rows do not match row_count")
                requireFeatureBounds(width: features.width, targetClasses: chunk.targetClasses, "chunk")
            }
        case .partial(let partial):
            require(partial.targetClasses * partial.sourceClasses <= WireFormat.maxCells, "partial: Y×Z above maxCells")
            require(partial.sourceClasses > 0 || partial.featureWidth > 0, "partial: neither joint cells nor features")
            switch partial.section {
            case .joint:
                require(partial.sourceClasses > 0, "partial: joint cells of no source classes")
                require(partial.part.cellStart + partial.part.cellCount <= partial.targetClasses * partial.sourceClasses, "partial: cells past Y×Z")
                require(partial.featureValues.isEmpty, "partial: feature values in a joint part")
            case .statistic(let kind):
                requireFeatureBounds(width: partial.featureWidth, targetClasses: partial.targetClasses, "partial")
                require(
                    partial.part.cellStart + partial.part.cellCount
                        <= kind.statisticType.flattenedCount(targetClasses: partial.targetClasses, featureWidth: partial.featureWidth),
                    "partial: values past the statistic's length")
                require(partial.jointSums.isEmpty && partial.argmaxCounts.isEmpty, "partial: joint cells in a feature part")
            }
            require(partial.partialID == PartialFrame.id(run: partial.run, chunks: partial.chunks), "partial: id not checked")
        case .conditional(let conditional):
            require(conditional.targetClasses * conditional.sourceClasses <= WireFormat.maxCells, "conditional: Y×Z above maxCells")
            require(conditional.part.cellStart + conditional.part.cellCount <= conditional.targetClasses * conditional.sourceClasses,
                    "conditional: cells past Y×Z")
        case .manifest(let manifest):
            require(manifest.shard < manifest.shardCount && manifest.partIndex < manifest.partCount, "manifest: index not below count")
            require(manifest.chunks.allSatisfy { $0.id.shard == manifest.shard && $0.id.rowCount > 0 }, "manifest: entry of another shard")
            require(manifest.sourceClasses > 0 || manifest.featureWidth > 0, "manifest: neither softmax outputs nor features")
            if manifest.featureWidth > 0 {
                requireFeatureBounds(width: manifest.featureWidth, targetClasses: manifest.targetClasses, "manifest")
            }
        case .task(let task):
            require(task.taskID == TaskFrame.id(run: task.run, pass: task.pass, chunks: task.chunks.map(\.id)), "task: id not checked")
            require(!task.pass.readsSharedTables || !task.conditional.isEmpty, "task: pass 2 without its conditional")
        case .taskResult(let result):
            require(result.sampleCount <= UInt64(Int64.max) && result.hits <= UInt64(Int64.max), "task result: count past 2^63")
        case .rowSample(let sample):
            require(sample.rows.count >= 1 && sample.rows.count <= Int(sample.chunk.rowCount), "row sample: row count not checked")
            require(zip(sample.rows, sample.rows.dropFirst()).allSatisfy { $0 < $1 } && sample.rows.last! < sample.chunk.rowCount,
                    "row sample: rows not increasing within the chunk")
            require(sample.rows.count * sample.sourceClasses <= WireFormat.maxCells, "row sample: values above maxCells")
            require(sample.probabilities.allSatisfy { $0.isFinite && $0 >= 0 }, "row sample: a value not finite or negative")
        case .chunkRejected, .runMarker, .partitionMarker:
            break
        }
        require(frame.run.map { !$0.isEmpty } ?? true, "\(frame.kindName): empty run id")
    }

    /// D within 1…`maxFeatureWidth`, and the statistics it implies within `maxFeatureValues`.
    private static func requireFeatureBounds(width: Int, targetClasses: Int, _ kind: String) {
        require(width >= 1 && width <= WireFormat.maxFeatureWidth, "\(kind): feature width \(width) out of bounds")
        require(
            WireFormat.plannedFeatureValues(targetClasses: targetClasses, featureWidth: width) <= WireFormat.maxFeatureValues,
            "\(kind): feature statistics above maxFeatureValues")
    }

    /// The frame encoded by the encoders the roles use.
    static func encoded(_ frame: Frame) -> [UInt8] {
        switch frame {
        case .chunk(let chunk) where chunk.probabilities == nil:
            // Features alone: encoded from the labels and a view of the features.
            guard let features = chunk.features else { return [] }
            return chunk.labels.withUnsafeBufferPointer { labels in
                features.withView { view in
                    ChunkFrame.encode(
                        run: chunk.run, shard: chunk.id.shard, shardCount: chunk.shardCount, targetClasses: chunk.targetClasses,
                        firstRow: Int(chunk.id.firstRow), labels: labels, features: view)
                }
            }
        case .chunk(let chunk):
            var encoder = ChunkEncoder(frame: chunk)
            // The visitor only encodes; it never throws.
            try? chunk.visit(&encoder)
            return encoder.bytes
        case .manifest(let manifest): return manifest.encoded()
        case .partial(let partial): return partial.encoded()
        case .task(let task): return task.encoded()
        case .conditional(let conditional): return conditional.encoded()
        case .taskResult(let result): return result.encoded()
        case .chunkRejected(let rejection): return rejection.encoded()
        case .runMarker(let marker): return marker.encoded()
        case .partitionMarker(let marker): return marker.encoded()
        case .rowSample(let sample): return sample.encoded()
        }
    }

    /// Encodes a chunk's rows through `ChunkFrame.encode`, the producers' entry point, which
    /// takes them as a `PredictionChunk` of their concrete element type.
    private struct ChunkEncoder: ChunkVisitor {
        let frame: ChunkFrame
        var bytes: [UInt8] = []

        mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) {
            guard let features = frame.features else {
                bytes = ChunkFrame.encode(
                    run: frame.run, shard: frame.id.shard, shardCount: frame.shardCount, targetClasses: frame.targetClasses, rows: chunk)
                return
            }
            bytes = features.withView { view in
                ChunkFrame.encode(
                    run: frame.run, shard: frame.id.shard, shardCount: frame.shardCount, targetClasses: frame.targetClasses,
                    rows: chunk, features: view)
            }
        }
    }
}
