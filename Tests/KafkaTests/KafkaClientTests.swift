import Foundation
import Kafka
import Synchronization
import Testing

/// The librdkafka wrapper against a real broker. `ops/test` starts one and sets
/// `LEEP_TEST_BROKERS`; without it these tests are skipped (they never fake a broker).
@Suite(.enabled(if: ProcessInfo.processInfo.environment["LEEP_TEST_BROKERS"] != nil, "needs LEEP_TEST_BROKERS"))
struct KafkaClientTests {
    let configuration = KafkaConfiguration(
        bootstrapServers: ProcessInfo.processInfo.environment["LEEP_TEST_BROKERS"] ?? "",
        properties: ["session.timeout.ms": "6000", "heartbeat.interval.ms": "500"])

    func freshTopic(partitions: Int32 = 3) throws -> String {
        let name = "kafka-test-\(UUID().uuidString.prefix(8))"
        let topic = KafkaTopicSpecification(name: name, partitions: partitions)
        #expect(try KafkaAdmin.createTopics([topic], configuration: configuration).isEmpty)
        // Creating it again is not an error: it is reported as existing.
        #expect(try KafkaAdmin.createTopics([topic], configuration: configuration) == [name])
        return name
    }

    @Test func deliveryReportsGiveLocationsThatFetchReadsBack() throws {
        let topic = try freshTopic()
        let producer = try KafkaProducer(configuration: configuration)
        let records = (0..<20).map { OutgoingRecord(topic: topic, value: Array("record \($0)".utf8)) }
        let reports = try producer.send(records)
        #expect(reports.count == 20)
        #expect(Set(reports.map(\.topic)) == [topic])
        let fetcher = try KafkaFetcher(configuration: configuration)
        // In an order of our choosing, across partitions.
        let wanted = [reports[13], reports[2], reports[19]]
        let messages = try fetcher.fetch(topic: topic, locations: wanted.map { ($0.partition, $0.offset) })
        #expect(messages.map { String(decoding: $0.value, as: UTF8.self) } == ["record 13", "record 2", "record 19"])
        #expect(messages.map(\.partition) == wanted.map(\.partition))
    }

    @Test func keysHeadersAndKeyedPartitioning() throws {
        let topic = try freshTopic()
        let producer = try KafkaProducer(configuration: configuration)
        let reports = try producer.send((0..<6).map { _ in
            OutgoingRecord(topic: topic, key: "run-7", value: [1, 2, 3], headers: [("leep.reason", Array("why".utf8))])
        })
        #expect(Set(reports.map(\.partition)).count == 1, "one key, one partition")
        let message = try KafkaFetcher(configuration: configuration)
            .fetch(topic: topic, locations: [(reports[0].partition, reports[0].offset)])[0]
        #expect(message.keyText == "run-7")
        #expect(message.headers.count == 1 && message.headers[0].0 == "leep.reason" && message.headers[0].1 == Array("why".utf8))
    }

    @Test func groupConsumerResumesAfterItsCommit() throws {
        let topic = try freshTopic(partitions: 2)
        let group = "kafka-test-group-\(UUID().uuidString.prefix(8))"
        let producer = try KafkaProducer(configuration: configuration)
        try producer.send((0..<10).map { OutgoingRecord(topic: topic, value: [UInt8($0)]) })

        let assignments = AssignmentLog()
        let first = try KafkaConsumer(configuration: configuration.merging(["group.id": group]), topics: [topic]) { event, _ in
            assignments.record(event)
        }
        var seen: [UInt8] = []
        let deadline = ContinuousClock.now + .seconds(30)
        while seen.count < 10 && ContinuousClock.now < deadline {
            if let message = try first.poll(timeoutMilliseconds: 200) { seen.append(message.value[0]) }
        }
        #expect(Set(seen) == Set(0..<10))
        #expect(assignments.assignedCount > 0)
        try first.commit()
        first.close()
        #expect(assignments.revokedCount > 0, "closing leaves the group with a revocation")
        // Another client reads what the group committed without joining it (the aggregators
        // read the workers' offsets so): the ten records, over both partitions.
        let committed = try KafkaGroupOffsets(configuration: configuration, group: group).committed(topic: topic)
        #expect(committed.values.reduce(0, +) == 10 && Set(committed.keys).isSubset(of: [0, 1]))

        try producer.send((10..<13).map { OutgoingRecord(topic: topic, value: [UInt8($0)]) })
        let second = try KafkaConsumer(configuration: configuration.merging(["group.id": group]), topics: [topic])
        var resumed: [UInt8] = []
        let secondDeadline = ContinuousClock.now + .seconds(30)
        while resumed.count < 3 && ContinuousClock.now < secondDeadline {
            if let message = try second.poll(timeoutMilliseconds: 200) { resumed.append(message.value[0]) }
        }
        // Only what came after the commit: nothing consumed and committed is delivered again.
        #expect(Set(resumed) == [10, 11, 12])
        second.close()
    }

    @Test func librdkafkaErrorsSurfaceWithTheirText() {
        do {
            _ = try KafkaProducer(configuration: configuration.merging(["no.such.property": "1"]))
            Issue.record("an unknown property must be refused")
        } catch {
            #expect(error.message.contains("no.such.property"))
            #expect(error.message.contains("No such configuration property"))
        }
        // A secret's value never appears in a description of the configuration.
        let secret = configuration.merging(["sasl.password": "hunter2"])
        #expect(!secret.description.contains("hunter2"))
    }
}

/// Counts rebalance events seen by a consumer's handler.
final class AssignmentLog: Sendable {
    private let counts = Mutex((assigned: 0, revoked: 0))

    func record(_ event: KafkaRebalance) {
        counts.withLock {
            switch event {
            case .assigned: $0.assigned += 1
            case .revoked: $0.revoked += 1
            }
        }
    }

    var assignedCount: Int { counts.withLock { $0.assigned } }
    var revokedCount: Int { counts.withLock { $0.revoked } }
}
