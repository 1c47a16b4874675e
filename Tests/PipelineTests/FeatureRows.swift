import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// The feature rows the pipeline tests send: seeded labels and float32 features whose class
/// means differ around a common offset of 50, and their statistics straight from LEEPCore (what
/// the workers' partials and the aggregator's merge must reproduce).
struct FeatureRows {
    let width: Int
    let classes: Int
    var labels: [Int32] = []
    var features: [Float] = []

    init(seed: UInt64, rows: Int, classes: Int, width: Int) {
        self.width = width
        self.classes = classes
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<rows {
            let label = Int32.random(in: 0..<Int32(classes), using: &generator)
            labels.append(label)
            features += (0..<width).map { j in
                Float(50 + Double(label) * Double(j % 3) + Double.random(in: -1...1, using: &generator))
            }
        }
    }

    /// The features of rows `range`.
    func features(of range: Range<Int>) -> [Float] { Array(features[(range.lowerBound * width)..<(range.upperBound * width)]) }

    /// Every statistic of all rows at once.
    func directSet() throws -> FeatureStatisticSet {
        var statistics = FeatureStatisticSet(featureWidth: width, targetClasses: classes)
        try features.withUnsafeBufferPointer { values in
            try labels.withUnsafeBufferPointer { labels in
                try statistics.add(FeatureChunk(values: .float32(values), labels: labels, width: width))
            }
        }
        return statistics
    }
}

/// What a worker publishes for a repair task naming `chunks` (held at offsets 0, 1, … of
/// partition 0): the partial frames, or nil (and an issue recorded) when it publishes none.
func repairedPartial(of chunks: [ChunkFrame], maxMessageBytes: Int) throws -> [PartialFrame]? {
    var records = InMemoryRecords()
    var located: [LocatedChunk] = []
    for (offset, chunk) in chunks.enumerated() {
        let location = RecordLocation(partition: 0, offset: Int64(offset))
        records.chunkRecords[location] = chunk
        located.append(LocatedChunk(id: chunk.id, location: location))
    }
    let task = TaskFrame(run: chunks[0].run.id, pass: .repair, conditional: [], chunks: located)
    var runner = TaskRunner(maxMessageBytes: maxMessageBytes)
    var conditionals = InMemoryRecords()
    guard case .partial(let frames) = try runner.run(task, chunks: &records, conditionals: &conditionals) else {
        Issue.record("a repair published no partial")
        return nil
    }
    return frames
}

extension Frame {
    /// The manifest of a one-shard run of `rows` rows in chunks of `rowsPerChunk`, chunk i at
    /// offset i of partition 0 (`sourceClasses` 0: features alone).
    static func manifest(
        of run: RunIdentity, shard: UInt32 = 0, sourceClasses: Int, targetClasses: Int, rows: Int, rowsPerChunk: Int,
        featureWidth: Int
    ) -> Frame {
        .manifest(ManifestFrame(
            run: run, shard: shard, shardCount: 1, sourceClasses: sourceClasses, targetClasses: targetClasses,
            shardRows: UInt64(rows), totalChunks: UInt32(rows / rowsPerChunk), partIndex: 0, partCount: 1,
            chunks: (0..<(rows / rowsPerChunk)).map { index in
                LocatedChunk(
                    id: ChunkID(shard: 0, firstRow: UInt64(index * rowsPerChunk), rowCount: UInt32(rowsPerChunk)),
                    location: RecordLocation(partition: 0, offset: Int64(index)))
            },
            eepAccuracy: false, featureWidth: featureWidth))
    }
}
