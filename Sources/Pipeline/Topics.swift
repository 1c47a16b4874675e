import Foundation
import Kafka

/// The names of leepstream's topics under one prefix.
///
/// `chunks` and `tasks` carry the bulk and are spread over all partitions so every worker helps
/// with every run; `runs` is keyed by run, so each aggregator owns whole runs and sees each
/// run's records in one order. How many partitions each gets and how long it keeps records is
/// in `TopicPlan`.
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
    /// Aggregator → aggregators: a compacted changelog of closed run ids, keyed by run id, each
    /// in the partition numbered like the run's partition of `runs`.
    public var closed: String { prefix + "closed" }
    /// Records that are not valid frames, with the reason in their headers.
    public var deadLetter: String { prefix + "deadletter" }
}

/// Every topic leepstream needs, with its partitions, replication and configuration: the one
/// place these are decided. `leep topics create` creates it, `leep topics plan` prints it, and
/// `ops/broker`, docker-compose.yml, the Kubernetes Job and `ops/validate-deploy` go through
/// those two commands.
public struct TopicPlan: Sendable, Encodable {
    /// The choices an operator makes: partition counts, replication and retention.
    public struct Settings: Sendable, Equatable {
        /// Partitions of `chunks`, and of `tasks` (a pass-2 task goes to the tasks partition
        /// numbered like its chunks' partition). Busy workers ≤ this.
        public var chunkPartitions: Int32 = 8
        /// Partitions of `runs`, and of `closed` (a run's record goes to the same partition
        /// number). Busy aggregators ≤ this.
        public var runPartitions: Int32 = 4
        /// Partitions of `conditionals`.
        public var conditionalPartitions: Int32 = 4
        /// Partitions of `scores`.
        public var scorePartitions: Int32 = 1
        /// Partitions of `deadletter`.
        public var deadLetterPartitions: Int32 = 1
        /// Copies of each partition; -1 takes the broker's default.
        public var replicationFactor: Int32 = -1
        /// How long `chunks`, `tasks`, `conditionals` and `runs` keep records: longer than the
        /// longest run, and longer than the aggregators' `--abandon-after`.
        public var retentionHours: Int = 7 * 24
        /// How long `deadletter` keeps records.
        public var deadLetterRetentionHours: Int = 30 * 24

        /// The defaults.
        public init() {}

        /// What is wrong with these settings, one sentence each; empty if nothing is.
        public var problems: [String] {
            let partitions: [(String, Int32)] = [
                ("chunk", chunkPartitions), ("run", runPartitions), ("conditional", conditionalPartitions),
                ("score", scorePartitions), ("dead-letter", deadLetterPartitions),
            ]
            var problems = partitions.filter { $0.1 < 1 }.map { "\($0.0) partitions must be at least 1, not \($0.1)" }
            if replicationFactor == 0 || replicationFactor < -1 {
                problems.append("the replication factor must be -1 (the broker's default) or at least 1, not \(replicationFactor)")
            }
            for (what, hours) in [("retention", retentionHours), ("dead-letter retention", deadLetterRetentionHours)] where hours < 1 {
                problems.append("the \(what) must be at least 1 hour, not \(hours)")
            }
            return problems
        }
    }

    /// One topic of the plan, and what its configuration protects.
    public struct Entry: Sendable, Equatable, Encodable {
        /// Name, partitions, replication and configuration, as created.
        public let topic: KafkaTopicSpecification
        /// Why the topic is configured so: what would go wrong otherwise.
        public let protects: String

        private enum CodingKeys: String, CodingKey {
            case name, partitions, replicationFactor = "replication_factor", configs, protects
        }

        public func encode(to encoder: any Encoder) throws {
            var container = encoder.container(keyedBy: CodingKeys.self)
            try container.encode(topic.name, forKey: .name)
            try container.encode(topic.partitions, forKey: .partitions)
            try container.encode(topic.replicationFactor, forKey: .replicationFactor)
            try container.encode(topic.configs, forKey: .configs)
            try container.encode(protects, forKey: .protects)
        }
    }

    /// One entry per topic: chunks, tasks, conditionals, runs, closed, scores, deadletter.
    public let entries: [Entry]

    /// The plan for `topics` under `settings`.
    public init(topics: Topics, settings: Settings = Settings()) {
        let retention = Self.deleteAfter(hours: settings.retentionHours)
        let compact = ["cleanup.policy": "compact"]
        func entry(_ name: String, _ partitions: Int32, _ configs: [String: String], _ protects: String) -> Entry {
            Entry(
                topic: KafkaTopicSpecification(
                    name: name, partitions: partitions, replicationFactor: settings.replicationFactor, configs: configs),
                protects: protects)
        }
        entries = [
            entry(topics.chunks, settings.chunkPartitions, retention, """
                Chunks are read again by offset for pass 2 and repairs until their run closes: \
                kept for the retention (longer than the longest run), then deleted.
                """),
            entry(topics.tasks, settings.chunkPartitions, retention, """
                As many partitions as chunks: a pass-2 task goes to the partition numbered like its \
                chunks', which the range assignor gives to the worker that consumed them. Kept for \
                the retention so no task of an open run is lost.
                """),
            entry(topics.conditionals, settings.conditionalPartitions, retention, """
                P(y|z) of a run in pass 2, fetched by offset by the workers doing its tasks: kept \
                for the retention.
                """),
            entry(topics.runs, settings.runPartitions, retention, """
                Aggregators replay a partition from the first record of its oldest open run; runs \
                open longer than the aggregators' --abandon-after (24 h by default) are closed as \
                failed, so the retention must exceed --abandon-after or an open run loses its records.
                """),
            entry(topics.closed, settings.runPartitions, compact, """
                As many partitions as runs (a closed run's record goes to its runs partition's \
                number); compacted, so the latest record of every closed run stays forever and an \
                aggregator taking over knows which runs are closed after their runs records are deleted.
                """),
            entry(topics.scores, settings.scorePartitions, compact, """
                Compacted: the latest score record of every (model, data set) pair stays forever.
                """),
            entry(topics.deadLetter, settings.deadLetterPartitions, Self.deleteAfter(hours: settings.deadLetterRetentionHours), """
                Records that are not valid frames, kept long enough to inspect (30 days by default).
                """),
        ]
    }

    /// Creates the topics that do not exist yet; returns the names of those that did (left as
    /// they are: Kafka cannot lower a partition count, and configurations are not altered).
    @discardableResult
    public func create(configuration: KafkaConfiguration) throws(KafkaError) -> Set<String> {
        try KafkaAdmin.createTopics(entries.map(\.topic), configuration: configuration)
    }

    /// The plan as one JSON object: `{"topics": [{"name", "partitions", "replication_factor",
    /// "configs", "protects"}, …]}`, keys sorted.
    public func json() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self)
    }

    private enum CodingKeys: String, CodingKey { case entries = "topics" }

    private static func deleteAfter(hours: Int) -> [String: String] {
        ["cleanup.policy": "delete", "retention.ms": "\(hours * 3_600_000)"]
    }
}
