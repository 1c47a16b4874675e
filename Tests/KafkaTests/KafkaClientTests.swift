import Foundation
@testable import Kafka
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
        let messages = try fetcher.fetch(topic: topic, locations: wanted.map { ($0.partition, $0.offset) }).map { outcome in
            guard case .record(let message) = outcome else { throw KafkaError(message: "not fetched: \(outcome)") }
            return message
        }
        #expect(messages.map { String(decoding: $0.value, as: UTF8.self) } == ["record 13", "record 2", "record 19"])
        #expect(messages.map(\.partition) == wanted.map(\.partition))
    }

    /// A record past a partition's end is reported absent — by the broker's answer, well
    /// within the fetch's bound — and does not keep the records beside it from being found.
    @Test func aLocationPastThePartitionsEndIsAbsentNotAWait() throws {
        let topic = try freshTopic(partitions: 1)
        let producer = try KafkaProducer(configuration: configuration)
        let reports = try producer.send((0..<5).map { OutgoingRecord(topic: topic, value: [UInt8($0)]) })
        let fetcher = try KafkaFetcher(configuration: configuration, timeoutMilliseconds: 20_000)
        let started = ContinuousClock.now
        let outcomes = try fetcher.fetch(topic: topic, locations: [(0, reports[3].offset), (0, 1_000_000), (0, 1_000_001)])
        let elapsed = ContinuousClock.now - started
        guard case .record(let message) = outcomes[0] else { throw KafkaError(message: "record 3 not fetched: \(outcomes[0])") }
        #expect(message.value.first == 3)
        for outcome in outcomes.dropFirst() {
            guard case .absent(let why) = outcome else { throw KafkaError(message: "not absent: \(outcome)") }
            #expect(why.contains("partition 0") && why.contains("ends at offset 5"), "\(why)")
        }
        // Not a timing goal: only that the answer came from the broker, not from the bound.
        #expect(elapsed < .seconds(15), "answered by the broker, not by the 20 s bound")
        // The same fetcher, asked again right after, still finds what exists.
        guard case .record = try fetcher.fetch(topic: topic, locations: [(0, reports[0].offset)])[0] else {
            throw KafkaError(message: "record 0 not fetched after an absent one")
        }
    }

    /// A fetch from a broker that does not answer ends at its bound with the records
    /// unavailable — not absent: nothing is known about them.
    @Test func noBrokerMeansUnavailableWithinTheBound() throws {
        let unreachable = KafkaConfiguration(bootstrapServers: "127.0.0.1:1", properties: [:])
        let fetcher = try KafkaFetcher(configuration: unreachable, timeoutMilliseconds: 500)
        let outcomes = try fetcher.fetch(topic: "leep.chunks", locations: [(0, 7)])
        guard case .unavailable(let why) = outcomes[0] else { throw KafkaError(message: "not unavailable: \(outcomes[0])") }
        #expect(why.contains("offset 7 of partition 0") && why.contains("500 ms"), "\(why)")
    }

    @Test func keysHeadersAndKeyedPartitioning() throws {
        let topic = try freshTopic()
        let producer = try KafkaProducer(configuration: configuration)
        let reports = try producer.send((0..<6).map { _ in
            OutgoingRecord(topic: topic, key: "run-7", value: [1, 2, 3], headers: [("leep.reason", Array("why".utf8))])
        })
        #expect(Set(reports.map(\.partition)).count == 1, "one key, one partition")
        guard case .record(let message) = try KafkaFetcher(configuration: configuration)
            .fetch(topic: topic, locations: [(reports[0].partition, reports[0].offset)])[0]
        else { throw KafkaError(message: "record not fetched") }
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

/// librdkafka's repeated complaints are shown once a window, not once a try (no broker needed).
@Suite struct RepeatFilterTests {
    @Test func aKindOfMessageIsShownOnceAWindowWithTheCountHeldBack() {
        var filter = RepeatFilter(window: .seconds(60))
        let t0 = ContinuousClock.now
        #expect(filter.admit("Connect to 127.0.0.1:1 failed (after 0ms in state CONNECT)", at: t0) == 0)
        for step in 1...50 {
            #expect(filter.admit("Connect to 127.0.0.1:1 failed (after \(step)ms in state CONNECT)", at: t0 + .milliseconds(step * 50)) == nil)
        }
        #expect(filter.admit("1/1 brokers are down", at: t0 + .seconds(1)) == 0, "another kind is shown")
        #expect(filter.admit("Connect to 127.0.0.1:1 failed (after 2ms in state CONNECT)", at: t0 + .seconds(61)) == 50)
    }
}
