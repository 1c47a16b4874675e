/// A topic to create: its name, partition count, replication factor and topic-level
/// configuration (`cleanup.policy`, `retention.ms`, …), as CreateTopics takes them.
public struct KafkaTopicSpecification: Sendable, Equatable {
    /// The topic's full name.
    public var name: String
    /// The number of partitions.
    public var partitions: Int32
    /// Copies of each partition; -1 takes the broker's `default.replication.factor`.
    public var replicationFactor: Int32
    /// Topic-level configuration set on creation; keys the broker does not know fail the topic.
    public var configs: [String: String]

    /// A topic named `name` with `partitions` partitions.
    public init(name: String, partitions: Int32, replicationFactor: Int32 = -1, configs: [String: String] = [:]) {
        self.name = name
        self.partitions = partitions
        self.replicationFactor = replicationFactor
        self.configs = configs
    }
}

/// Topic administration: creating the topics leepstream uses.
public enum KafkaAdmin {
    /// Creates each topic that does not exist yet, with its partitions, replication and
    /// configuration. Existing topics are left as they are; their names are returned.
    @discardableResult
    public static func createTopics(
        _ topics: [KafkaTopicSpecification], configuration: KafkaConfiguration, timeoutMilliseconds: Int32 = 30_000
    ) throws(KafkaError) -> Set<String> {
        try RDKafkaClient(kind: .producer, configuration: configuration)
            .createTopics(topics, timeoutMilliseconds: timeoutMilliseconds)
    }
}
