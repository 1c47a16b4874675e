// The transport floor for the pipeline: librdkafka producing and consuming the same records
// leep publishes, with no processing at all.
//   leep-bench-kafka produce BROKERS TOPIC PREDICTIONS.npy LABELS.npy   → the chunk frames of the files
//   leep-bench-kafka consume BROKERS TOPIC COUNT                          → reads COUNT records from the start
// Prints one JSON object with the seconds taken and the bytes moved.
import Foundation
import Kafka
import LEEPCore
import Pipeline
import PredictionFiles
import WireFormat

struct Encoder: ChunkVisitor {
    var frames: [[UInt8]] = []
    mutating func visit<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) throws {
        frames.append(ChunkFrame.encode(
            run: RunIdentity(id: "raw", model: "raw", dataset: "raw"), shard: 0, shardCount: 1, targetClasses: 1,
            rows: chunk))
    }
}

func seconds(since start: ContinuousClock.Instant) -> Double {
    let elapsed = ContinuousClock.now - start
    return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
}

let arguments = CommandLine.arguments
let configuration = KafkaConfiguration(
    bootstrapServers: arguments[2],
    properties: ["message.max.bytes": "1100000", "fetch.max.bytes": "50000000", "receive.message.max.bytes": "51000000"])
switch arguments[1] {
case "produce":
    let files = try ScoringFiles(labels: LabelFile(path: arguments[5]), predictionsPath: arguments[4], featuresPath: nil)
    let pair = files.predictions!
    // Exactly the chunking of `leep produce`, so the records are the same size and count.
    let (rows, batchRows) = ShardPublisher.chunking(of: files, maxMessageBytes: 1_000_000)
    let producer = try KafkaProducer(configuration: configuration)
    let start = ContinuousClock.now
    var bytes = 0
    var count = 0
    var first = 0
    while first < pair.sampleCount {
        var encoder = Encoder()
        try pair.forEachChunk(rows: first..<min(pair.sampleCount, first + batchRows), rowsPerChunk: rows, &encoder)
        try producer.send(encoder.frames.map { OutgoingRecord(topic: arguments[3], value: $0) })
        bytes += encoder.frames.reduce(0) { $0 + $1.count }
        count += encoder.frames.count
        first += batchRows
    }
    print("{\"seconds\": \(seconds(since: start)), \"bytes\": \(bytes), \"records\": \(count)}")
case "consume":
    let wanted = Int(arguments[4])!
    let reader = try KafkaTopicReader(configuration: configuration.merging(["group.id": "raw-\(UUID())"]), topic: arguments[3])
    let start = ContinuousClock.now
    var count = 0
    var bytes = 0
    while count < wanted {
        if let message = reader.poll(timeoutMilliseconds: 1000) {
            count += 1
            bytes += message.value.count
        }
    }
    print("{\"seconds\": \(seconds(since: start)), \"bytes\": \(bytes), \"records\": \(count)}")
default:
    FileHandle.standardError.write(Data("usage: leep-bench-kafka produce|consume …\n".utf8))
    exit(64)
}
