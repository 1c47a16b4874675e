import Kafka

/// The names of leepstream's topics under one prefix, and how many partitions each gets.
///
/// `chunks` and `tasks` carry the bulk and are spread over all partitions so every worker helps
/// with every run; `runs` is keyed by run, so each aggregator owns whole runs and sees each
/// run's records in one order.
public struct Topics: Sendable {
    /// The prefix, "leep." by default.
    public let prefix: String

    /// Names under `prefix`.
    public init(prefix: String = "leep.") { self.prefix = prefix }

    /// Producers → workers: chunk frames.
    public var chunks: String { prefix + "chunks" }
    /// Manifests, partials, task results, rejections and aggregator markers, keyed by run.
    public var runs: String { prefix + "runs" }
    /// Aggregator → workers: repair and pass-2 tasks.
    public var tasks: String { prefix + "tasks" }
    /// Aggregator → workers: P(y|z) parts for pass 2, keyed by run.
    public var conditionals: String { prefix + "conditionals" }
    /// Aggregator → anyone: progress, final and failed scores as JSON, keyed by pair.
    public var scores: String { prefix + "scores" }
    /// Aggregators → aggregators: the ids of closed runs, keyed by run, compacted; partition i
    /// holds the runs of `runs` partition i.
    public var closed: String { prefix + "closed" }
    /// Records that are not valid frames, with the reason in their headers.
    public var deadLetter: String { prefix + "deadletter" }

    /// Every topic with its partition count.
    public var all: [(name: String, partitions: Int32)] {
        [(chunks, 8), (runs, 4), (closed, 4), (tasks, 8), (conditionals, 4), (scores, 1), (deadLetter, 1)]
    }

    /// Creates the topics that do not exist yet.
    public func create(configuration: KafkaConfiguration, replicationFactor: Int32 = -1) throws(KafkaError) {
        try KafkaAdmin.createTopics(all, configuration: configuration, replicationFactor: replicationFactor)
    }
}
