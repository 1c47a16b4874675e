import Kafka
import LEEPCore
import Synchronization
import TestSupport
import WireFormat

@testable import Pipeline

/// A run of random softmax rows cut into chunk frames at known locations, with the whole data
/// kept for direct computation: what the worker's unit tests feed it and check it against.
struct WorkerFixture {
    let run: RunIdentity
    let sourceClasses: Int
    let targetClasses: Int
    /// θ, row-major, and the labels of every row.
    let theta: [Double]
    let labels: [Int32]
    /// The chunks in row order, each at partition 0 and an offset of its own.
    let chunks: [(frame: ChunkFrame, location: RecordLocation, bytes: Int)]

    init(run: String, rows: Int, rowsPerChunk: Int, sourceClasses: Int = 7, targetClasses: Int = 3, seed: UInt64 = 1,
         partition: Int32 = 0) throws {
        let identity = RunIdentity(id: run, model: "m", dataset: "d")
        self.run = identity
        self.sourceClasses = sourceClasses
        self.targetClasses = targetClasses
        var generator = SeededGenerator(seed: seed)
        var theta: [Double] = []
        for _ in 0..<rows {
            let weights = (0..<sourceClasses).map { _ in Double.random(in: 0.01...1, using: &generator) }
            let total = weights.reduce(0, +)
            theta += weights.map { $0 / total }
        }
        let labels = (0..<rows).map { _ in Int32.random(in: 0..<Int32(targetClasses), using: &generator) }
        self.labels = labels
        self.theta = theta
        var chunks: [(ChunkFrame, RecordLocation, Int)] = []
        for first in stride(from: 0, to: rows, by: rowsPerChunk) {
            let count = min(rowsPerChunk, rows - first)
            let bytes = theta[(first * sourceClasses)..<((first + count) * sourceClasses)].withUnsafeBufferPointer { theta in
                labels[first..<(first + count)].withUnsafeBufferPointer { labels in
                    ChunkFrame.encode(
                        run: identity, shard: 0, shardCount: 1, targetClasses: targetClasses,
                        rows: PredictionChunk(probabilities: theta, labels: labels, sourceClasses: sourceClasses, firstRow: first))
                }
            }
            guard case .chunk(let frame) = try Frame.decode(bytes) else { throw FrameError.unknownKind(0) }
            chunks.append((frame, RecordLocation(partition: partition, offset: Int64(chunks.count)), bytes.count))
        }
        self.chunks = chunks
    }

    /// The chunks as a task names them.
    var located: [LocatedChunk] { chunks.map { LocatedChunk(id: $0.frame.id, location: $0.location) } }

    /// Pass 1 over the whole data at once.
    func joint() throws -> JointAccumulator {
        var joint = JointAccumulator(targetClasses: targetClasses, sourceClasses: sourceClasses)
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try joint.add(PredictionChunk(probabilities: theta, labels: labels, sourceClasses: sourceClasses))
            }
        }
        return joint
    }

    /// Pass 2 over the whole data at once, with the conditional of the whole data.
    func eep(accuracy: Bool) throws -> EEPAccumulator {
        let conditional = ConditionalTable(joint: try joint())
        var eep = EEPAccumulator()
        try theta.withUnsafeBufferPointer { theta in
            try labels.withUnsafeBufferPointer { labels in
                try eep.add(
                    PredictionChunk(probabilities: theta, labels: labels, sourceClasses: sourceClasses),
                    conditional: conditional, accuracy: accuracy)
            }
        }
        return eep
    }

    /// The conditional of the whole data as the aggregator publishes it: parts of at most
    /// `cellsPerPart` cells, at offsets 0, 1, … of the conditionals topic.
    func conditionalParts(cellsPerPart: Int) throws -> [RecordLocation: ConditionalFrame] {
        let table = ConditionalTable(joint: try joint())
        let parts = MatrixPart.split(
            cells: table.probabilities.count, bytesPerCell: ConditionalFrame.bytesPerCell,
            maxPayloadBytes: cellsPerPart * ConditionalFrame.bytesPerCell)
        var located: [RecordLocation: ConditionalFrame] = [:]
        for (index, part) in parts.enumerated() {
            located[RecordLocation(partition: 0, offset: Int64(index))] = ConditionalFrame(
                run: run.id, targetClasses: targetClasses, sourceClasses: sourceClasses, part: part,
                values: Array(table.probabilities[part.cellStart..<(part.cellStart + part.cellCount)]))
        }
        return located
    }
}

/// A broker in memory: chunks and conditional parts by location, and how often each was asked
/// for. A test double of the sources' seam; the broker suite covers `BrokerRecords`.
struct InMemoryRecords: ChunkSource, ConditionalSource {
    var chunkRecords: [RecordLocation: ChunkFrame] = [:]
    var conditionalRecords: [RecordLocation: ConditionalFrame] = [:]
    private(set) var chunksAsked: [LocatedChunk] = []
    private(set) var conditionalFetches = 0

    mutating func chunks(_ chunks: [LocatedChunk]) -> [Lookup<ChunkFrame>] {
        chunksAsked += chunks
        return chunks.map { chunkRecords[$0.location].map(Lookup.found) ?? .absent("no record at offset \($0.location.offset)") }
    }

    mutating func conditionalParts(at locations: [RecordLocation]) -> [Lookup<ConditionalFrame>] {
        conditionalFetches += 1
        return locations.map { conditionalRecords[$0].map(Lookup.found) ?? .absent("no record at offset \($0.offset)") }
    }
}

/// A sink in memory: the batches delivered, after failing the first `failures` attempts
/// (with fatal errors when `fatal`, as a fenced producer's).
final class InMemorySink: RecordSink {
    private let state: Mutex<(batches: [[OutgoingRecord]], attempts: Int, failures: Int)>
    private let fatal: Bool
    private let observer = Mutex<(@Sendable (Int) -> Void)?>(nil)

    init(failures: Int = 0, fatal: Bool = false) {
        state = Mutex(([], 0, failures))
        self.fatal = fatal
    }

    var batches: [[OutgoingRecord]] { state.withLock { $0.batches } }
    var attempts: Int { state.withLock { $0.attempts } }
    /// Called with the attempt's number before each attempt.
    var onAttempt: (@Sendable (Int) -> Void)? {
        get { observer.withLock { $0 } }
        set { observer.withLock { $0 = newValue } }
    }

    func deliver(_ records: [OutgoingRecord]) throws {
        let attempt = state.withLock { state in
            state.attempts += 1
            return state.attempts
        }
        onAttempt?(attempt)
        try state.withLock { state in
            guard state.attempts > state.failures else {
                throw KafkaError(message: fatal ? "producer fenced (test)" : "broker unreachable (test)", isFatal: fatal)
            }
            state.batches.append(records)
        }
    }
}

/// A partial's frames put back together: the sums, the counts, n and the chunks.
func assembled(_ frames: [PartialFrame]) -> (joint: [Double], counts: [Int64], samples: UInt64, chunks: [ChunkID]) {
    var joint = Array(repeating: 0.0, count: frames[0].targetClasses * frames[0].sourceClasses)
    var counts = Array(repeating: Int64(0), count: joint.count)
    for frame in frames {
        joint.replaceSubrange(frame.part.cellStart..<(frame.part.cellStart + frame.part.cellCount), with: frame.jointSums)
        counts.replaceSubrange(frame.part.cellStart..<(frame.part.cellStart + frame.part.cellCount), with: frame.argmaxCounts)
    }
    return (joint, counts, frames[0].sampleCount, frames[0].chunks)
}
