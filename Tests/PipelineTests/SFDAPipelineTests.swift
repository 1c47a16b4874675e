import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// SFDA through the pipeline without a broker: after pass 1 and LEEP's pass 2, a run with
/// features goes through SFDA's mixing and scoring steps — the fits published as shared tables,
/// the tasks done by a worker's `TaskRunner`, the mixing results in parts — and its final record
/// carries the SFDA of the whole data. An owner that replays the run's records reaches the same
/// record; a run whose SFDA is undefined skips the steps and says why.
@Suite struct SFDAPipelineTests {
    typealias F = FeaturePipelineTests
    static let start = Timestamp(milliseconds: 5_000_000)

    /// One run driven to its end: the machine's actions carried out in memory, every record of
    /// the runs topic kept in order (`log`), the passes of the steps issued (`steps`).
    struct World {
        var machine = RunStateMachine(run: F.identity.id, policy: .init(), firstSeen: start, isLive: true)
        var records = InMemoryRecords()
        var runner = TaskRunner(maxMessageBytes: 4096 + 2_000)
        var log: [Frame] = []
        var steps: [TaskFrame.Pass] = []
        /// The computations the machine asked for, in order.
        var computations: [RunComputation.Kind] = []
        var final: ScoreRecord?
        private var nextTableOffset: Int64 = 0

        init(_ data: F.Data) {
            for index in 0..<(F.rows / F.rowsPerChunk) {
                records.chunkRecords[RecordLocation(partition: 0, offset: Int64(index))] = data.chunk(index)
            }
        }

        /// Applies `frame` as a record of the runs topic, and carries out whatever follows.
        mutating func record(_ frame: Frame) throws {
            log.append(frame)
            try carryOut(machine.handle(.record(frame, at: start)))
        }

        private mutating func carryOut(_ actions: [RunStateMachine.Action]) throws {
            for action in actions {
                switch action {
                case .issue(let tables, let tasks, let marker):
                    var locations: [RecordLocation] = []
                    for table in tables { locations += publish(table) }
                    if let marker {
                        steps.append(tasks.first!.pass)
                        try record(.runMarker(RunMarkerFrame(run: F.identity.id, marker: marker)))
                    }
                    for plan in tasks {
                        let task = TaskFrame(run: F.identity.id, pass: plan.pass, conditional: locations, chunks: plan.chunks)
                        var chunkSource = records
                        var tableSource = records
                        guard case .result(let parts) = try runner.run(task, chunks: &chunkSource, conditionals: &tableSource) else {
                            Issue.record("task \(plan.pass) gave no result")
                            return
                        }
                        // Through the wire, as a worker publishes them.
                        for part in parts { try record(Frame.decode(part.encoded())) }
                    }
                case .close(let record):
                    final = record
                case .compute(let computation):
                    // As the loop does, off it: the value comes back as an event.
                    computations.append(computation.kind)
                    try carryOut(machine.handle(.computed(computation.kind, computation(), at: start)))
                case .publish, .repair, .count:
                    break
                }
            }
        }

        /// A shared table as conditional frames on the conditionals topic (small parts).
        private mutating func publish(_ table: RunStateMachine.SharedTable) -> [RecordLocation] {
            let (rows, columns, values) = switch table {
            case .conditional(let conditional): (conditional.targetClasses, conditional.sourceClasses, conditional.probabilities)
            case .sfdaFit(let fit): fit.matrix
            }
            return MatrixPart.split(cells: values.count, bytesPerCell: 8, maxPayloadBytes: 200).map { part in
                let location = RecordLocation(partition: 9, offset: nextTableOffset)
                nextTableOffset += 1
                records.conditionalRecords[location] = ConditionalFrame(
                    run: F.identity.id, targetClasses: rows, sourceClasses: columns, part: part,
                    values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)]))
                return location
            }
        }
    }

    /// SFDA of all rows at once, straight from LEEPCore.
    static func direct(_ data: F.Data) throws -> Double {
        let within = try #require(try data.directSet()[WithinClassScatter.self])
        guard case .success(let first) = SFDA.Fit.fit(within) else { throw TaskError("no first fit") }
        return try data.features.withUnsafeBufferPointer { values in
            try data.labels.withUnsafeBufferPointer { labels in
                let chunk = FeatureChunk(values: .float32(values), labels: labels, width: F.d)
                var mixed = WithinClassScatter(featureWidth: F.d, targetClasses: F.y)
                SFDA.addMixedRows(of: chunk, first: first, to: &mixed)
                guard case .success(let second) = SFDA.Fit.fit(mixed, shrinkage: first.shrinkage) else {
                    throw TaskError("no second fit")
                }
                return SFDA.ownClassProbabilitySum(of: chunk, first: first, second: second) / Double(F.rows)
            }
        }
    }

    @Test(arguments: [UInt64(1), 2, 3])
    func aRunWithFeaturesGoesThroughSFDAsPassesAndScoresTheWholeData(seed: UInt64) throws {
        let data = F.Data(seed: seed)
        var world = World(data)
        for frame in [F.manifest()] + F.partials(data, chunks: Array(0..<(F.rows / F.rowsPerChunk))) { try world.record(frame) }
        #expect(world.steps == [.eep, .sfdaMix, .sfdaScore])
        #expect(world.computations == [.sfdaFirstFit, .sfdaSecondFit, .featureMetrics], "each asked for once, off the loop")
        let record = try #require(world.final)
        #expect(record.status == .final && record.leep != nil && record.n == F.rows)
        let sfda = try #require(record.features?.values[SFDA.key] ?? nil)
        let expected = try Self.direct(data)
        #expect(abs(sfda - expected) <= 1e-10 * abs(expected), "\(sfda) vs \(expected)")
        #expect(record.features?.values[SFDA.shrinkageKey] ?? nil != nil)

        // A later owner replays the same records (computing the fits its markers need as it
        // goes), then decides: it asks for the feature metrics off the loop, and closes with the
        // same final record once they come.
        var replay = RunStateMachine(run: F.identity.id, policy: .init(), firstSeen: Self.start)
        for frame in world.log { #expect(replay.handle(.record(frame, at: Self.start)).isEmpty, "no decision while replaying") }
        // (Its progress record says where it waits meanwhile: pass 4 done.)
        let actions = replay.handle(.caughtUp(at: Self.start))
        let asked = actions.compactMap { if case .compute(let computation) = $0 { computation } else { nil } }
        #expect(actions.allSatisfy { if case .publish(let record) = $0 { record.status == .progress } else { true } })
        guard asked.count == 1, let computation = asked.first, computation.kind == .featureMetrics else {
            Issue.record("the replay did not ask for the feature metrics once: \(asked.map(\.kind))")
            return
        }
        #expect(replay.handle(.tick(Self.start)).allSatisfy { if case .compute = $0 { false } else { true } }, "asked for once")
        let value = computation()
        let closing = replay.handle(.computed(.featureMetrics, value, at: Self.start))
        #expect(closing.count == 1)
        guard case .close(let again)? = closing.first else { Issue.record("the replay did not close"); return }
        #expect(again == record)
        #expect(replay.handle(.computed(.featureMetrics, value, at: Self.start)).isEmpty, "a value not asked for changes nothing")
    }

    @Test func aRunWhoseSFDAIsUndefinedSkipsItsPassesAndSaysWhy() throws {
        var data = F.Data(seed: 6)
        // Every row its class's one-hot: no within-class scatter, so no discriminant.
        data.features = data.labels.flatMap { label in (0..<F.d).map { Float($0 == Int(label) ? 1 : 0) } }
        var world = World(data)
        for frame in [F.manifest()] + F.partials(data, chunks: Array(0..<(F.rows / F.rowsPerChunk))) { try world.record(frame) }
        #expect(world.steps == [.eep])
        let record = try #require(world.final)
        #expect(record.status == .final && record.leep != nil)
        #expect(record.features?.values[SFDA.key] == .some(nil))
        #expect(record.features?.unscored[SFDA.key]?.contains("no within-class scatter") == true)
        #expect(record.features?.values["hscore"] ?? nil != nil, "the other metrics stand")
    }

    @Test func anSFDAMixingResultTravelsInPartsAndReassembles() throws {
        let values = (0..<WithinClassScatter.flattenedCount(targetClasses: 3, featureWidth: 40)).map { Double($0) }
        let parts = TaskResultFrame.parts(
            run: "r", taskID: 7, sampleCount: 9, statistics: values, targetClasses: 3, featureWidth: 40, messageLimit: 4096 + 800)
        #expect(parts.count > 1 && parts.allSatisfy { $0.encoded().count <= 4096 + 800 && $0.encoded()[4] == 2 })
        var back = [Double](repeating: -1, count: values.count)
        for part in parts {
            guard case .taskResult(let decoded) = try Frame.decode(part.encoded()), let piece = decoded.statistics else {
                Issue.record("not a result with statistics")
                return
            }
            #expect(decoded == part)
            back.replaceSubrange(piece.part.cellStart..<(piece.part.cellStart + piece.part.cellCount), with: piece.values)
        }
        #expect(back == values)
        let plain = TaskResultFrame(run: "r", taskID: 7, sampleCount: 9, logEEPSum: 1.5, hits: 2)
        #expect(plain.encoded()[4] == 1, "a result without statistics is written as version 1, as before")
    }
}
