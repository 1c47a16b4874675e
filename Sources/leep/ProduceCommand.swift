import ArgumentParser
import Foundation
import Kafka
import LEEPCore
import Pipeline
import PredictionFiles
import WireFormat

/// `leep produce`: publishes one model's softmax outputs, features or both on one data set (or
/// one shard of them).
struct ProduceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "produce",
        abstract: "Publish labels with softmax outputs, features or both (or one shard of a run) to Kafka for scoring.",
        discussion: """
            Give --predictions (the source model's softmax outputs), --features (its \
            penultimate-layer features for the same rows) or both, with --labels. The files are \
            validated first, with the same rules and messages as `leep score`; nothing is \
            published if they are bad. The command exits 0 once every chunk and the manifest are \
            delivered. With --shard I --shards K the files hold shard I's rows only; the run is \
            scored once all K shards of the same --run are in. Publishing a shard again with the \
            same --chunk-rows is safe: each chunk is counted once. Softmax outputs give LEEP and \
            NCE; features give LogME, the H-score and the shrinkage H-score; a model without a \
            classifier head sends --features alone. Every shard of a run must send the same kinds \
            of input, features of the same width.
            """)

    @Option(help: "The source model's name.") var model: String
    @Option(help: "The target data set's name.") var dataset: String
    @Option(help: ArgumentHelp("Softmax outputs, an n×Z .npy file.", valueName: "path")) var predictions: String?
    @Option(help: ArgumentHelp("Target labels, a length-n .npy file of integers.", valueName: "path")) var labels: String
    @Option(help: ArgumentHelp("Penultimate-layer features, an n×D .npy file (float16/32/64).", valueName: "path"))
    var features: String?
    @Option(help: ArgumentHelp("Y (default: max label + 1; with shards, the largest over shards).", valueName: "Y"))
    var targetClasses: Int?
    @Option(help: "Rows per chunk (default: as many as fit the message limit).") var chunkRows: Int?
    @Option(help: "This shard's index, 0..<shards.") var shard: UInt32 = 0
    @Option(help: "How many shards the run has.") var shards: UInt32 = 1
    @Option(name: .customLong("run"), help: "The run id: shards of one run share it (default: a new id; required with --shards > 1).")
    var runID: String?
    @Option(help: "Largest accepted |row sum − 1|.") var sumTolerance: Double = RowCheck.defaultSumTolerance
    @Option(help: "The broker's message size limit in bytes.") var maxMessageBytes: Int = 1_000_000
    @Option(help: ArgumentHelp(
        "Seconds to wait for a broker to answer before giving up; records not acknowledged within this long fail too.",
        valueName: "seconds"))
    var brokerWait: Double = 30
    @Flag(help: "Also compute EEP accuracy for this run (pass 2 then costs Y dot products a sample instead of one).")
    var eepAccuracy = false
    @OptionGroup var kafka: KafkaOptions

    func validate() throws {
        guard predictions != nil || features != nil else {
            throw ValidationError("give --predictions, --features or both")
        }
        if eepAccuracy && predictions == nil {
            throw ValidationError("--eep-accuracy needs --predictions: EEP accuracy comes from the softmax outputs")
        }
        if let option = RawArguments.firstNotUTF8(among: ["--model", "--dataset", "--run"]) {
            throw ValidationError("the value of \(option) is not valid UTF-8: names are published as UTF-8 text, and leep does not guess")
        }
        for (option, name) in [("--model", model), ("--dataset", dataset), ("--run", runID ?? "run")] {
            guard !name.isEmpty, name.utf8.count <= 256 else {
                throw ValidationError("\(option) must be 1 to 256 bytes long")
            }
        }
        guard shards >= 1, shard < shards else { throw ValidationError("--shard must be below --shards") }
        if shards > 1 && runID == nil { throw ValidationError("--run is required with --shards > 1: every shard must name the same run") }
        if let chunkRows, chunkRows < 1 { throw ValidationError("--chunk-rows must be at least 1") }
        if let targetClasses, targetClasses < 1 { throw ValidationError("--target-classes must be at least 1") }
        guard brokerWait >= 1, brokerWait <= 86_400 else { throw ValidationError("--broker-wait must be 1 to 86400 seconds") }
    }

    func run() throws {
        let files = try ScoringFiles(
            labels: LabelFile(path: labels, targetClasses: targetClasses), predictionsPath: predictions, featuresPath: features)
        try ShardPublisher.checkFeatureShape(of: files)  // before any broker is asked
        let runID = self.runID ?? "\(model)@\(dataset)@\(UUID().uuidString.prefix(8).lowercased())"
        let logger = kafka.logger(label: "leep.produce")
        let waitMilliseconds = Int32(brokerWait * 1000)
        let configuration = try kafka.configuration().merging(["message.max.bytes": "\(max(maxMessageBytes, 1_000_000) + 100_000)"])
            // A record not acknowledged within --broker-wait fails the command (librdkafka's
            // default is 300 s): a producer is run by a person or a job that wants to know.
            .merging(["message.timeout.ms": "\(waitMilliseconds)"], keepingExisting: true)
        let producer = try KafkaProducer(configuration: configuration)
        // Fail within --broker-wait, with one line, when no broker answers (not after the
        // message timeout, and not with a line per reconnection attempt).
        if let failure = producer.probeBroker(timeoutMilliseconds: waitMilliseconds) {
            throw KafkaError(message: "no Kafka broker answered at \(configuration["bootstrap.servers"] ?? "?") within "
                + "\(brokerWait.formatted()) s (\(failure)); check --brokers and that the broker runs")
        }
        let publisher = ShardPublisher(producer: producer, topics: kafka.topics, maxMessageBytes: maxMessageBytes, logger: logger)
        let started = ContinuousClock.now
        var display = ProgressDisplay(unit: "rows", total: files.sampleCount, bytesPerUnit: Double(files.rowBytes + 4))
        let summary = try publisher.publish(
            files, shard: .init(run: RunIdentity(id: runID, model: model, dataset: dataset), index: shard, count: shards,
                eepAccuracy: eepAccuracy),
            check: RowCheck(sumTolerance: sumTolerance), rowsPerChunk: chunkRows, progress: { display.update($0) })
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        print("run \(runID): shard \(shard + 1)/\(shards), \(summary.rows) rows in \(summary.chunks) chunks, "
            + String(format: "%.1f MB in %.2f s", Double(summary.bytes) / 1e6, seconds))
    }
}
