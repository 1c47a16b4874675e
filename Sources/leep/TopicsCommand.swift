import ArgumentParser
import Pipeline

/// `leep topics create`: creates leepstream's topics on a cluster.
struct TopicsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "topics", abstract: "Manage leepstream's Kafka topics.", subcommands: [Create.self])

    struct Create: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create the topics that do not exist yet (chunks, runs, tasks, conditionals, scores, deadletter).")

        @OptionGroup var kafka: KafkaOptions

        @Option(help: "Replication factor (-1: the broker's default).")
        var replicationFactor: Int32 = -1

        func run() throws {
            try kafka.topics.create(configuration: try kafka.configuration(), replicationFactor: replicationFactor)
            for topic in kafka.topics.all { print("\(topic.name)\t\(topic.partitions) partitions") }
        }
    }
}
