import ArgumentParser
import Pipeline

/// `leep aggregate`: merges partials and publishes scores until SIGINT/SIGTERM.
struct AggregateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "aggregate",
        abstract: "Join the aggregators' consumer group: merge partials, run pass 2, publish scores.")

    @Option(help: "Consumer group of the aggregators (default: the topic prefix + \"aggregators\").") var group: String?
    @Option(help: "Seconds without progress before missing chunks the workers have passed are recomputed.")
    var repairAfter: Double = 10
    @Option(help: "Seconds without progress before every missing chunk is recomputed, passed by the workers or not.")
    var repairAnywayAfter: Double = 60
    @Option(help: "Consumer group of the workers, whose committed offsets tell which chunks they have passed (default: the topic prefix + \"workers\").")
    var workersGroup: String?
    @Option(help: "Seconds without any record before a run whose manifests are not all in is published as incomplete.")
    var incompleteAfter: Double = 60
    @Option(help: ArgumentHelp(
        "Seconds without any record before an open run is closed as failed (abandoned).",
        discussion: "Keeps a run that never finishes from staying open, and pinning the runs topic's history, forever. "
            + "Keep it below the retention of the runs and chunks topics."))
    var abandonAfter: Double = 86_400
    @Option(help: "The broker's message size limit in bytes.") var maxMessageBytes: Int = 1_000_000
    @Option(help: ArgumentHelp(
        "Rows of a run merged before its streaming records carry an estimate of its LEEP.",
        discussion: "The estimate's interval is a large-sample one: with few rows merged it covers the final LEEP "
            + "less often than it says (docs/transferability.md, section 10)."))
    var estimateAfterRows: Int = 100
    @Option(help: ArgumentHelp(
        "Threads for the runs' decompositions (feature metrics, SFDA's fits) (default: all cores but one).",
        discussion: "They run off the loop, so a run with wide features never holds up the others' records."))
    var computationThreads: Int?
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var operations: OperationsOptions

    func validate() throws {
        if let computationThreads, computationThreads < 1 {
            throw ValidationError("--computation-threads must be at least 1, not \(computationThreads)")
        }
    }

    func run() async throws {
        var options = Aggregator.Options()
        options.repairAfter = .milliseconds(Int(repairAfter * 1000))
        options.repairAnywayAfter = .milliseconds(Int(repairAnywayAfter * 1000))
        options.workersGroup = workersGroup ?? kafka.topicPrefix + "workers"
        options.incompleteAfter = .milliseconds(Int(incompleteAfter * 1000))
        options.abandonAfter = .milliseconds(Int(abandonAfter * 1000))
        options.maxMessageBytes = maxMessageBytes
        options.estimateAfterRows = estimateAfterRows
        if let computationThreads { options.computationThreads = computationThreads }
        // Deployments on one cluster are told apart by their topic prefix; so are their groups.
        let group = self.group ?? kafka.topicPrefix + "aggregators"
        let logger = kafka.logger(label: "leep.aggregate")
        let configuration = try kafka.configuration().merging(
            WorkerCommand.clientDefaults(maxMessageBytes: maxMessageBytes), keepingExisting: true)
        let (topics, roleOptions) = (kafka.topics, options)
        try await operations.run(
            role: "aggregator", logger: logger,
            makeRole: { health in
                let aggregator = try Aggregator(
                    configuration: configuration, group: group, topics: topics, options: roleOptions, health: health, logger: logger)
                logger.info("aggregator started", metadata: ["group": "\(group)", "kafka": "\(configuration)"])
                return aggregator
            },
            loop: { aggregator, shutdown in try aggregator.run(until: shutdown) })
    }
}
