import Foundation
import Kafka
import Pipeline
import Testing

/// The topic plan: every topic's partitions and configuration, and how the settings change them.
@Suite struct TopicPlanTests {
    static let hour = 3_600_000

    static func byName(_ plan: TopicPlan) -> [String: KafkaTopicSpecification] {
        Dictionary(uniqueKeysWithValues: plan.entries.map { ($0.topic.name, $0.topic) })
    }

    @Test func everyTopicOnceUnderThePrefixWithTheDefaults() throws {
        let plan = TopicPlan(topics: Topics(prefix: "p."))
        #expect(plan.entries.map(\.topic.name) == [
            "p.chunks", "p.tasks", "p.conditionals", "p.runs", "p.closed", "p.scores", "p.deadletter",
        ])
        let topics = Self.byName(plan)
        #expect(topics.mapValues(\.partitions) == [
            "p.chunks": 8, "p.tasks": 8, "p.conditionals": 4, "p.runs": 4, "p.closed": 4, "p.scores": 1, "p.deadletter": 1,
        ])
        #expect(plan.entries.allSatisfy { $0.topic.replicationFactor == -1 && !$0.protects.isEmpty })
        #expect(TopicPlan.Settings().problems.isEmpty)
    }

    @Test func configurationOfEachTopic() throws {
        let topics = Self.byName(TopicPlan(topics: Topics()))
        let week = ["cleanup.policy": "delete", "retention.ms": "\(7 * 24 * Self.hour)"]
        for name in ["leep.chunks", "leep.tasks", "leep.conditionals", "leep.runs"] {
            #expect(topics[name]?.configs == week, "\(name)")
        }
        #expect(topics["leep.scores"]?.configs == ["cleanup.policy": "compact"])
        #expect(topics["leep.closed"]?.configs == ["cleanup.policy": "compact"])
        #expect(topics["leep.deadletter"]?.configs == ["cleanup.policy": "delete", "retention.ms": "\(30 * 24 * Self.hour)"])
    }

    @Test func settingsOverrideCountsReplicationAndRetention() throws {
        var settings = TopicPlan.Settings()
        settings.chunkPartitions = 16
        settings.runPartitions = 6
        settings.conditionalPartitions = 2
        settings.scorePartitions = 3
        settings.deadLetterPartitions = 5
        settings.replicationFactor = 3
        settings.retentionHours = 48
        settings.deadLetterRetentionHours = 10
        let plan = TopicPlan(topics: Topics(), settings: settings)
        let topics = Self.byName(plan)
        #expect(topics.mapValues(\.partitions) == [
            "leep.chunks": 16, "leep.tasks": 16, "leep.conditionals": 2, "leep.runs": 6, "leep.closed": 6,
            "leep.scores": 3, "leep.deadletter": 5,
        ])
        #expect(plan.entries.allSatisfy { $0.topic.replicationFactor == 3 })
        #expect(topics["leep.runs"]?.configs["retention.ms"] == "\(48 * Self.hour)")
        #expect(topics["leep.deadletter"]?.configs["retention.ms"] == "\(10 * Self.hour)")
    }

    @Test(arguments: [1, 3, 7, 32])
    func tasksFollowChunksAndClosedFollowsRuns(count: Int32) {
        var settings = TopicPlan.Settings()
        settings.chunkPartitions = count
        settings.runPartitions = count + 1
        let topics = Self.byName(TopicPlan(topics: Topics(), settings: settings))
        #expect(topics["leep.tasks"]?.partitions == topics["leep.chunks"]?.partitions)
        #expect(topics["leep.closed"]?.partitions == topics["leep.runs"]?.partitions)
        #expect(topics["leep.closed"]?.partitions == count + 1)
    }

    @Test func problemsNameEachBadSetting() {
        var settings = TopicPlan.Settings()
        settings.chunkPartitions = 0
        settings.replicationFactor = 0
        settings.retentionHours = 0
        #expect(settings.problems == [
            "chunk partitions must be at least 1, not 0",
            "the replication factor must be -1 (the broker's default) or at least 1, not 0",
            "the retention must be at least 1 hour, not 0",
        ])
    }

    @Test func jsonShape() throws {
        let text = try TopicPlan(topics: Topics()).json()
        #expect(!text.contains("\n"), "one line")
        let object = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["topics"])
        let topics = try #require(object["topics"] as? [[String: Any]])
        #expect(topics.count == 7)
        for topic in topics {
            #expect(Set(topic.keys) == ["name", "partitions", "replication_factor", "configs", "protects"])
            #expect(topic["partitions"] is Int && topic["replication_factor"] is Int && topic["protects"] is String)
            #expect(topic["configs"] is [String: String])
        }
        #expect(topics.first?["name"] as? String == "leep.chunks")
        #expect(text.hasPrefix(#"{"topics":[{"configs":{"cleanup.policy":"delete","retention.ms":"604800000"},"name":"leep.chunks","partitions":8,"#))
    }
}
