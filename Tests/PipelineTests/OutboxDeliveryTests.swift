import Kafka
import LEEPCore
import Logging
import Synchronization
import Testing
import WireFormat

@testable import Pipeline

/// The order in which a round's actions reach the broker, without a broker: shared tables,
/// scores, repair tasks and dead letters first; then the tasks that name where their tables
/// landed, and the markers that record each decision, last.
@Suite struct OutboxDeliveryTests {
    /// Keeps each batch and answers with consecutive offsets of partition 7.
    final class MemorySink: AggregatorSink {
        let batches = Mutex<[[OutgoingRecord]]>([])

        func send(_ records: [OutgoingRecord]) throws(KafkaError) -> [DeliveryReport] {
            let first = batches.withLock { batches in
                defer { batches.append(records) }
                return batches.reduce(0) { $0 + $1.count }
            }
            return records.indices.map { DeliveryReport(topic: records[$0].topic, partition: 7, offset: Int64(first + $0)) }
        }

        func partitionCount(of topic: String) throws(KafkaError) -> Int32 { 4 }
    }

    static func frame(_ record: OutgoingRecord) -> Frame? { try? Frame.decode(record.value) }

    @Test func tablesComeBeforeTheTasksThatNameThemAndMarkersLast() throws {
        let sink = MemorySink()
        let topics = Topics(prefix: "t.")
        let delivery = OutboxDelivery(
            sink: sink, topics: topics, maxMessageBytes: 1_000_000, metrics: AggregatorMetrics(),
            delivery: PersistentDelivery(health: RoleHealth(role: "aggregator"), logger: Logger(label: "test")),
            logger: Logger(label: "test"))
        var joint = JointAccumulator(targetClasses: 2, sourceClasses: 3)
        let theta = RunFixture.rows.flatMap { $0 }
        try theta.withUnsafeBufferPointer { theta in
            try RunFixture.labels.withUnsafeBufferPointer { labels in
                try joint.add(PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 3))
            }
        }
        let chunk = LocatedChunk(id: RunFixture.chunkID(0), location: RecordLocation(partition: 2, offset: 40))
        let task = RunStateMachine.TaskPlan(pass: .eep, chunks: [chunk], id: 11)
        var record = ScoreRecord(model: "m", dataset: "d", run: "r", status: .failed)
        record.reason = "bad"
        var outbox = Outbox()
        outbox.add([.issue(tables: [.conditional(ConditionalTable(joint: joint))], tasks: [task], marker: .pass2Issued(taskIDs: [11]))],
                   of: "r", partition: 1)
        outbox.add([.repair(tasks: [RunStateMachine.TaskPlan(pass: .repair, chunks: [chunk], id: 12)], chunks: 1)], of: "q", partition: 1)
        outbox.add([.close(record)], of: "r", partition: 1)
        outbox.deadLetters.append((OutgoingRecord(topic: topics.deadLetter, value: [1]), 5, 1))
        try delivery.deliver(outbox)

        let batches = sink.batches.withLock { $0 }
        #expect(batches.count == 2, "one delivery wait for what comes first, one for what must follow")
        #expect(batches[0].map(\.topic) == [topics.conditionals, topics.scores, topics.tasks, topics.deadLetter])
        guard case .task(let repair)? = Self.frame(batches[0][2]) else { Issue.record("no repair task"); return }
        #expect(repair.pass == .repair && repair.conditional.isEmpty && batches[0][2].partition == 2)
        #expect(batches[1].map(\.topic) == [topics.tasks, topics.runs, topics.runs, topics.runs, topics.closed, topics.runs])
        guard case .task(let issued)? = Self.frame(batches[1][0]) else { Issue.record("no task"); return }
        #expect(issued.conditional == [RecordLocation(partition: 7, offset: 0)], "the task names where its table landed")
        let markers = batches[1][1...3].compactMap { record -> RunMarkerFrame.Marker? in
            if case .runMarker(let marker)? = Self.frame(record) { marker.marker } else { nil }
        }
        #expect(markers == [.pass2Issued(taskIDs: [11]), .repairIssued(chunks: 1), .closed])
        guard case .partitionMarker(let deadLettered)? = Self.frame(batches[1][5]) else { Issue.record("no dead-letter marker"); return }
        #expect(deadLettered.marker == .deadLettered(offset: 5) && batches[1][5].partition == 1)
    }

    @Test func anEmptyRoundSendsNothing() throws {
        let sink = MemorySink()
        let delivery = OutboxDelivery(
            sink: sink, topics: Topics(), maxMessageBytes: 1_000_000, metrics: AggregatorMetrics(),
            delivery: PersistentDelivery(health: RoleHealth(role: "aggregator"), logger: Logger(label: "test")),
            logger: Logger(label: "test"))
        try delivery.deliver(Outbox())
        #expect(sink.batches.withLock { $0.isEmpty })
    }
}
