import Foundation
import Kafka
import Logging
import Synchronization
import WireFormat

/// Where the aggregator's records go: the broker (`KafkaProducer`), or a test's memory.
protocol AggregatorSink: Sendable {
    /// Publishes `records` and returns where each landed, once all are delivered.
    func send(_ records: [OutgoingRecord]) throws(KafkaError) -> [DeliveryReport]
    /// The number of partitions of `topic`.
    func partitionCount(of topic: String) throws(KafkaError) -> Int32
}

extension KafkaProducer: AggregatorSink {}

/// Turns a round's `Outbox` into records and sends them in the order the protocol needs
/// (`deliver`); counts what it delivered.
final class OutboxDelivery: Sendable {
    let sink: any AggregatorSink
    let topics: Topics
    let maxMessageBytes: Int
    let metrics: AggregatorMetrics
    let delivery: PersistentDelivery
    let logger: Logger
    /// Partitions of the tasks topic, once looked up.
    private let taskPartitions = Mutex<Int32?>(nil)

    init(
        sink: any AggregatorSink, topics: Topics, maxMessageBytes: Int, metrics: AggregatorMetrics,
        delivery: PersistentDelivery, logger: Logger
    ) {
        self.sink = sink
        self.topics = topics
        self.maxMessageBytes = maxMessageBytes
        self.metrics = metrics
        self.delivery = delivery
        self.logger = logger
    }

    /// Sends everything due, in at most two batches: shared tables (conditionals, SFDA fits),
    /// scores, repairs and dead letters first; then what must follow them — a step's tasks name
    /// where their tables landed, and a decision is recorded (`pass2Issued`, `tasksIssued`,
    /// `repairIssued`, `closed`, dead-lettered) only once what it records is delivered. Retries
    /// until delivered: nothing may be committed before.
    func deliver(_ outbox: Outbox) throws {
        guard !outbox.isEmpty else { return }
        // First batch: each issue's table parts, in order, then everything else.
        let conditionals = outbox.issues.map { issue in issue.tables.flatMap { tableRecords($0, run: issue.run) } }
        var first = conditionals.flatMap { $0 }
        first += outbox.scores.map(scoreRecord)
        first += taskRecords(outbox.repairs.flatMap { repair in
            repair.tasks.map { TaskFrame(run: repair.run, pass: $0.pass, conditional: [], chunks: $0.chunks) }
        })
        first += outbox.deadLetters.map(\.record)
        let reports = try delivery.deliver("conditionals, scores and repairs") { try sink.send(first) }

        var second: [OutgoingRecord] = []
        var reportIndex = 0
        for (issue, records) in zip(outbox.issues, conditionals) {
            let located = reports[reportIndex..<(reportIndex + records.count)].map {
                RecordLocation(partition: $0.partition, offset: $0.offset)
            }
            reportIndex += records.count
            second += taskRecords(issue.tasks.map {
                TaskFrame(run: issue.run, pass: $0.pass, conditional: located, chunks: $0.chunks)
            })
            if let recorded = issue.marker { second.append(marker(recorded, run: issue.run)) }
            metrics.pass2TasksIssued.increment(by: Int64(issue.tasks.count))
            let message: Logger.Message = switch issue.marker {
            case .pass2Issued?: "pass 2 issued"
            case .tasksIssued(let pass, _)?: "SFDA's \(pass == .sfdaMix ? "mixing" : "scoring") pass issued"
            default: "tasks issued again"
            }
            logger.info(message, metadata: [
                "run": "\(issue.run)", "pass": "\(issue.tasks.first.map { "\($0.pass)" } ?? "none")",
                "tasks": "\(issue.tasks.count)", "table_parts": "\(records.count)",
            ])
        }
        for repair in outbox.repairs {
            second.append(marker(.repairIssued(chunks: UInt32(repair.chunks)), run: repair.run))
            metrics.chunksRepaired.increment(by: Int64(repair.chunks))
            logger.warning("repairing chunks without an accepted partial", metadata: [
                "run": "\(repair.run)", "chunks": "\(repair.chunks)", "tasks": "\(repair.tasks.count)",
            ])
        }
        for closed in outbox.closed {
            if let record = closed.record {
                second.append(marker(.closed, run: closed.run))
                metrics.runClosed(record.status.rawValue)
                logger.info("run closed", metadata: [
                    "run": "\(closed.run)", "status": "\(record.status.rawValue)",
                    "leep": "\(record.leep.map { "\($0)" } ?? "-")", "duplicates_dropped": "\(record.partialsDropped ?? 0)",
                    "reason": "\(record.reason ?? "")",
                ])
            }
            second.append(OutgoingRecord(
                topic: topics.closed, key: Array(closed.run.utf8), value: RunMarkerFrame(run: closed.run, marker: .closed).encoded(),
                partition: closed.partition))
        }
        for letter in outbox.deadLetters {
            second.append(OutgoingRecord(
                topic: topics.runs, value: PartitionMarkerFrame(.deadLettered(offset: letter.offset)).encoded(),
                partition: letter.partition))
        }
        for record in outbox.scores where record.status == .progress || record.status == .streaming {
            metrics.progress(
                run: record.run, model: record.model, dataset: record.dataset, accepted: record.chunksAccepted ?? 0,
                expected: record.chunksExpected, pass: record.pass ?? 1)
        }
        if !second.isEmpty { try delivery.deliver("tasks and markers") { try sink.send(second) } }
    }

    private func marker(_ marker: RunMarkerFrame.Marker, run: String) -> OutgoingRecord {
        OutgoingRecord(topic: topics.runs, key: run, value: RunMarkerFrame(run: run, marker: marker).encoded())
    }

    /// A shared table as conditional frames, each under the message limit: P(y|z) as its Y×Z
    /// matrix, an SFDA fit as `SFDA.Fit.matrix`.
    private func tableRecords(_ table: RunStateMachine.SharedTable, run: String) -> [OutgoingRecord] {
        let (rows, columns, values) = switch table {
        case .conditional(let conditional): (conditional.targetClasses, conditional.sourceClasses, conditional.probabilities)
        case .sfdaFit(let fit): fit.matrix
        }
        let parts = MatrixPart.split(
            cells: values.count, bytesPerCell: ConditionalFrame.bytesPerCell, maxPayloadBytes: maxMessageBytes - 4096)
        return parts.map { part in
            OutgoingRecord(topic: topics.conditionals, key: run, value: ConditionalFrame(
                run: run, targetClasses: rows, sourceClasses: columns, part: part,
                values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)])
            ).encoded())
        }
    }

    /// A score record as JSON, keyed by its pair.
    private func scoreRecord(_ record: ScoreRecord) -> OutgoingRecord {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        // A record of strings and numbers always encodes.
        return OutgoingRecord(
            topic: topics.scores, key: ScoreRecord.key(model: record.model, dataset: record.dataset),
            value: Array(try! encoder.encode(record)))
    }

    /// Task records, each in the partition of the tasks topic numbered like its chunks'
    /// partition (modulo the count). Workers take both topics with the range assignor, so a task
    /// reaches the worker that consumed its chunks in pass 1 and may still hold them in memory
    /// (`ChunkCache`); any other worker fetches them.
    private func taskRecords(_ tasks: [TaskFrame]) -> [OutgoingRecord] {
        let count = taskPartitionCount()
        return tasks.map { task in
            OutgoingRecord(
                topic: topics.tasks, value: task.encoded(),
                partition: count.flatMap { count in task.chunks.first.map { $0.location.partition % count } })
        }
    }

    private func taskPartitionCount() -> Int32? {
        if let known = taskPartitions.withLock({ $0 }) { return known }
        // Unknown (the broker did not answer): the partitioner spreads them; the next round asks again.
        guard let count = try? sink.partitionCount(of: topics.tasks) else { return nil }
        taskPartitions.withLock { $0 = count }
        return count
    }
}

/// What one round must send, gathered from every run's actions: data only, turned into records
/// and sent by `AggregatorCore.deliver`.
struct Outbox {
    /// A task step started (with the marker that records it), or its missing tasks issued
    /// again, with the tables they read.
    struct TaskIssue {
        let run: String
        let tables: [RunStateMachine.SharedTable]
        let tasks: [RunStateMachine.TaskPlan]
        let marker: RunMarkerFrame.Marker?
    }

    /// Repair tasks for `chunks` missing chunks of `run`.
    struct Repair {
        let run: String
        let tasks: [RunStateMachine.TaskPlan]
        let chunks: Int
    }

    /// A run closed: its final or failed `record` (nil when an earlier owner published it and
    /// only the closed topic lacks the run), in its partition.
    struct Closed {
        let run: String
        let partition: Int32
        let record: ScoreRecord?
    }

    var issues: [TaskIssue] = []
    var repairs: [Repair] = []
    var scores: [ScoreRecord] = []
    var closed: [Closed] = []
    var deadLetters: [(record: OutgoingRecord, offset: Int64, partition: Int32)] = []

    var isEmpty: Bool { issues.isEmpty && repairs.isEmpty && scores.isEmpty && closed.isEmpty && deadLetters.isEmpty }

    /// Adds the actions a run's machine returned.
    mutating func add(_ actions: [RunStateMachine.Action], of run: String, partition: Int32) {
        for action in actions {
            switch action {
            case .issue(let tables, let tasks, let marker):
                issues.append(TaskIssue(run: run, tables: tables, tasks: tasks, marker: marker))
            case .repair(let tasks, let chunks):
                repairs.append(Repair(run: run, tasks: tasks, chunks: chunks))
            case .publish(let record):
                scores.append(record)
            case .close(let record):
                scores.append(record)
                closed.append(Closed(run: run, partition: partition, record: record))
            case .count:
                break  // The partition's machine turned counts into metrics before forwarding.
            case .compute:
                break  // Started by the loop (`ComputationPool`): nothing to publish.
            }
        }
    }
}
