import Foundation
import Testing

/// `leep topics plan`: the plan as printed, with the options `leep topics create` takes.
@Suite struct TopicsCommandTests {
    let command = ScoreCommandTests()

    func plan(_ arguments: [String]) throws -> [String: [String: Any]] {
        let outcome = try command.leep(["topics", "plan", "--json"] + arguments)
        #expect(outcome.status == 0, "\(outcome.standardError)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(outcome.standardOutput.utf8)) as? [String: Any])
        let topics = try #require(object["topics"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: topics.map { ($0["name"] as? String ?? "", $0) })
    }

    @Test func optionsOverrideCountsAndTheCreateLineBecomesAPlan() throws {
        // Kafka options are accepted (and unused), so a `topics create` line works with `plan`.
        let topics = try plan([
            "--topic-prefix=x.", "--chunk-partitions=16", "--run-partitions", "6", "--replication-factor=3",
            "--retention-hours=48", "--brokers", "127.0.0.1:1", "--kafka-config-file=/nonexistent",
        ])
        #expect(topics.mapValues { $0["partitions"] as? Int } == [
            "x.chunks": 16, "x.tasks": 16, "x.conditionals": 4, "x.runs": 6, "x.closed": 6, "x.scores": 1, "x.deadletter": 1,
        ])
        #expect(topics.values.allSatisfy { $0["replication_factor"] as? Int == 3 })
        #expect((topics["x.runs"]?["configs"] as? [String: String])?["retention.ms"] == "\(48 * 3_600_000)")
        #expect((topics["x.scores"]?["configs"] as? [String: String]) == ["cleanup.policy": "compact"])
    }

    @Test func aBadSettingIsRefused() throws {
        let outcome = try command.leep(["topics", "plan", "--chunk-partitions", "0"])
        #expect(outcome.status != 0)
        #expect(outcome.standardError.contains("chunk partitions must be at least 1, not 0"))
    }

    @Test func theTextPlanSaysWhatEachTopicProtects() throws {
        let outcome = try command.leep(["topics", "plan"])
        #expect(outcome.status == 0)
        let lines = outcome.standardOutput.split(separator: "\n")
        #expect(lines.count == 14, "a line per topic and one for what it protects")
        #expect(lines.first?.hasPrefix("leep.chunks\t8 partitions\treplication -1\tcleanup.policy=delete retention.ms=604800000") == true)
        #expect(outcome.standardOutput.contains("--abandon-after"))
    }
}
