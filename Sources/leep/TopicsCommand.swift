import ArgumentParser
import Pipeline

/// `leep topics create` and `leep topics plan`: leepstream's topics on a cluster, and the plan
/// they are created from.
struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "Manage leepstream's Kafka topics.", subcommands: [Create.self, Plan.self])

    /// `leep topics create`: creates the topics of the plan that do not exist yet.
    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the topics that do not exist yet (chunks, tasks, conditionals, runs, closed, scores, deadletter).",
            discussion: "Existing topics are left as they are. `leep topics plan` with the same options shows what is created.")

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var plan: TopicPlanOptions

        func run() throws {
            let plan = plan.plan(topics: kafka.topics)
            let existing = try plan.create(configuration: try kafka.configuration())
            for entry in plan.entries {
                let outcome = existing.contains(entry.topic.name) ? "exists (left as it is)" : "created"
                print("\(entry.topic.name)\t\(partitions(entry))\t\(outcome)")
            }
        }
    }

    /// `leep topics plan`: prints the plan without talking to Kafka.
    struct Plan: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print each topic's partitions, replication and configuration, and what they protect.",
            discussion: "Takes the options of `leep topics create` (its Kafka options are accepted and ignored), so a create command line becomes a plan by changing the verb.")

        @OptionGroup var kafka: KafkaOptions
        @OptionGroup var plan: TopicPlanOptions
        @Flag(help: "One JSON object: {\"topics\": [{\"name\", \"partitions\", \"replication_factor\", \"configs\", \"protects\"}]}.")
        var json = false

        func run() throws {
            let plan = plan.plan(topics: kafka.topics)
            if json {
                print(try plan.json())
                return
            }
            for entry in plan.entries {
                let configs = entry.topic.configs.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
                print("\(entry.topic.name)\t\(partitions(entry))\treplication \(entry.topic.replicationFactor)\t\(configs)")
                print("    \(entry.protects)")
            }
        }
    }
}

/// "1 partition", "8 partitions".
private func partitions(_ entry: TopicPlan.Entry) -> String {
    entry.topic.partitions == 1 ? "1 partition" : "\(entry.topic.partitions) partitions"
}

/// The options that size the topics, shared by `topics create` and `topics plan`.
struct TopicPlanOptions: ParsableArguments {
    private static let defaults = TopicPlan.Settings()

    @Option(help: "Partitions of chunks and of tasks (workers beyond this idle).")
    var chunkPartitions: Int32 = defaults.chunkPartitions
    @Option(help: "Partitions of runs and of closed (aggregators beyond this idle).")
    var runPartitions: Int32 = defaults.runPartitions
    @Option(help: "Partitions of conditionals.")
    var conditionalPartitions: Int32 = defaults.conditionalPartitions
    @Option(help: "Partitions of scores.")
    var scorePartitions: Int32 = defaults.scorePartitions
    @Option(help: "Partitions of deadletter.")
    var deadLetterPartitions: Int32 = defaults.deadLetterPartitions
    @Option(help: "Replication factor of every topic (-1: the broker's default; 3 in production).")
    var replicationFactor: Int32 = defaults.replicationFactor
    @Option(help: "Hours chunks, tasks, conditionals and runs keep records: longer than the longest run and than the aggregators' --abandon-after.")
    var retentionHours: Int = defaults.retentionHours
    @Option(help: "Hours deadletter keeps records.")
    var deadLetterRetentionHours: Int = defaults.deadLetterRetentionHours

    var settings: TopicPlan.Settings {
        var settings = TopicPlan.Settings()
        settings.chunkPartitions = chunkPartitions
        settings.runPartitions = runPartitions
        settings.conditionalPartitions = conditionalPartitions
        settings.scorePartitions = scorePartitions
        settings.deadLetterPartitions = deadLetterPartitions
        settings.replicationFactor = replicationFactor
        settings.retentionHours = retentionHours
        settings.deadLetterRetentionHours = deadLetterRetentionHours
        return settings
    }

    func validate() throws {
        if let problem = settings.problems.first { throw ValidationError(problem) }
    }

    func plan(topics: Topics) -> TopicPlan { TopicPlan(topics: topics, settings: settings) }
}
