import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// A worker given a run of features alone (Z = 0: a model without a classifier head): its
/// pass-1 partials carry Y×0 = 0 joint cells and the feature statistics of the whole data, in
/// section-1 parts numbered from 0; bad rows are rejected naming them; a repair is the partial
/// pass 1 would have flushed; and a pass-2 task over such chunks, which the run never needs, is
/// refused rather than counted.
@Suite struct FeaturesAloneWorkerTests {
    static let identity = RunIdentity(id: "run-alone", model: "dinov2", dataset: "d")
    static let (rows, y, d, rowsPerChunk) = (60, 3, 5, 6)

    /// The run's rows (`FeatureRows`) and its chunks.
    struct Data {
        let rows: FeatureRows
        var labels: [Int32] { rows.labels }
        var features: [Float] { rows.features }

        init(seed: UInt64) { rows = FeatureRows(seed: seed, rows: FeaturesAloneWorkerTests.rows, classes: y, width: d) }

        /// Chunk `index` (rows index·6 ..< index·6 + 6) as a decoded version-3 chunk frame, with
        /// `label` in its third row and `poison` in that row's feature 1 when given.
        func chunk(_ index: Int, label: Int32? = nil, poison: Float? = nil) -> ChunkFrame {
            let first = index * rowsPerChunk
            var values = rows.features(of: first..<(first + rowsPerChunk))
            var chunkLabels = Array(labels[first..<(first + rowsPerChunk)])
            if let poison { values[2 * d + 1] = poison }
            if let label { chunkLabels[2] = label }
            let bytes = chunkLabels.withUnsafeBufferPointer { labels in
                values.withUnsafeBytes { raw in
                    ChunkFrame.encode(
                        run: identity, shard: 0, shardCount: 1, targetClasses: y, firstRow: first, labels: labels,
                        features: FeatureRowsView(width: d, type: .float32, bytes: raw))
                }
            }
            guard case .chunk(let frame) = try! Frame.decode(bytes) else { fatalError("not a chunk") }
            return frame
        }

        /// Every feature statistic of all rows, straight from LEEPCore.
        func directSet() throws -> FeatureStatisticSet { try rows.directSet() }
    }

    /// A message limit that leaves 100 bytes of payload a part to a partial of `chunks` chunks,
    /// so that the feature statistics travel in several parts (12 values of 8 bytes each).
    static func policy(chunks: Int) -> Pass1Buffer.Policy {
        Pass1Buffer.Policy(
            interval: .seconds(60), maxPendingBytes: 1 << 30, maxChunksPerPartial: 1000,
            maxMessageBytes: PartialFrame.headroomBytes + PartialFrame.bytesPerChunk * chunks + 100)
    }

    /// The frames one worker flushes after adding `chunks`.
    static func flushed(_ data: Data, chunks: [Int]) -> [PartialFrame] {
        var buffer = Pass1Buffer(policy: policy(chunks: chunks.count))
        for index in chunks { #expect(buffer.add(data.chunk(index), bytes: 100, now: .now) == .added) }
        let (frames, _, partials) = buffer.flush()
        #expect(partials == 1)
        return frames
    }

    @Test(arguments: [UInt64(1), 2, 3]) func aPartialCarriesTheStatisticsOfItsRowsAndNoJointCells(seed: UInt64) throws {
        let data = Data(seed: seed)
        let chunks = Array(0..<(Self.rows / Self.rowsPerChunk))
        let frames = Self.flushed(data, chunks: chunks)
        let kinds = FeatureStatisticSet.plan(featureWidth: Self.d, targetClasses: Self.y)
        let counts = kinds.map { $0.statisticType.flattenedCount(targetClasses: Self.y, featureWidth: Self.d) }
        #expect(frames.count == counts.reduce(0) { $0 + ($1 + 11) / 12 }, "\(counts) values, 12 a part, nothing else")
        var sections = Dictionary(uniqueKeysWithValues: zip(kinds, counts.map { [Double](repeating: .nan, count: $0) }))
        for (index, frame) in frames.enumerated() {
            guard case .statistic(let kind) = frame.section else {
                Issue.record("part \(index) is a joint part")
                continue
            }
            #expect(frame.sourceClasses == 0 && frame.featureWidth == Self.d)
            #expect(frame.jointSums.isEmpty && frame.argmaxCounts.isEmpty)
            #expect(frame.part.partIndex == UInt32(index) && frame.part.partCount == UInt32(frames.count), "numbered from 0")
            #expect(frame.sampleCount == UInt64(Self.rows) && frame.targetClasses == Self.y && frame.run == Self.identity.id)
            // What goes on the wire reads back as the same part.
            guard case .partial(let decoded) = try Frame.decode(frame.encoded()) else {
                Issue.record("part \(index) does not decode as a partial")
                continue
            }
            #expect(decoded == frame)
            sections[kind]!.replaceSubrange(frame.part.cellStart..<(frame.part.cellStart + frame.part.cellCount), with: frame.featureValues)
        }
        // Statistics of rows (the aggregator's check), and those of the whole data up to the
        // rounding of merging chunk by chunk.
        let merged = try FeatureStatisticSet(sections: sections, sampleCount: Self.rows, featureWidth: Self.d, targetClasses: Self.y)
        let direct = try data.directSet()
        for (mine, theirs) in zip(merged.sections, direct.sections) {
            #expect(normwiseRelativeError(mine.values, theirs.values) < 1e-12, "\(mine.kind)")
        }
        let (scores, expected) = (FeatureMetricReport(statistics: merged), FeatureMetricReport(statistics: direct))
        #expect(scores.unscored == expected.unscored)
        for (key, want) in expected.values {
            guard let want, let got = scores.values[key] ?? nil else { continue }
            #expect(abs(got - want) <= 1e-10 * max(1, abs(want)), "\(key): \(got) vs \(want)")
        }
    }

    @Test func aBadRowIsRejectedNamingItAndDropsItsRunsSums() {
        let data = Data(seed: 4)
        var buffer = Pass1Buffer(policy: Self.policy(chunks: 1))
        #expect(buffer.add(data.chunk(0), bytes: 100, now: .now) == .added)
        // Chunk 1 starts at row 6: its third row is row 8. No softmax outputs check the labels
        // on the way; the features' statistics do.
        #expect(buffer.add(data.chunk(1, label: 3), bytes: 100, now: .now)
            == .rejected("shard 0 rows 6..<12: row 8: label 3 is outside [0, 3)"))
        guard case .rejected(let reason) = buffer.add(data.chunk(1, poison: .infinity), bytes: 100, now: .now) else {
            Issue.record("a chunk with an infinite feature was accepted")
            return
        }
        #expect(reason.contains("row 8: feature 1 is inf; features must be finite"), "\(reason)")
        // The first rejection fails the run: its pending sums are dropped, not flushed.
        #expect(buffer.isEmpty && buffer.flush().frames.isEmpty)
    }

    /// The run's manifest: Z = 0, D features, every chunk on partition 0.
    static func manifest() -> Frame {
        .manifest(of: identity, sourceClasses: 0, targetClasses: y, rows: rows, rowsPerChunk: rowsPerChunk, featureWidth: d)
    }

    @Test func aRunWaitingForItsFitIgnoresLatePartialsAndMovesOnWithItsValue() throws {
        let data = Data(seed: 7)
        let start = Timestamp(milliseconds: 1_000_000)
        var machine = RunStateMachine(run: Self.identity.id, policy: .init(), firstSeen: start, isLive: true)
        var actions: [RunStateMachine.Action] = []
        for frame in [Self.manifest()] + Self.flushed(data, chunks: Array(0..<(Self.rows / Self.rowsPerChunk))).map(Frame.partial) {
            actions += machine.handle(.record(frame, at: start))
        }
        let asked = actions.compactMap { if case .compute(let computation) = $0 { computation } else { nil } }
        #expect(asked.map(\.kind) == [.sfdaFirstFit], "pass 1 complete: SFDA's first fit, off the loop")
        // While it waits: a late copy of a partial (another worker's duplicate) changes nothing,
        // and time passing asks for nothing again.
        let ledger = machine.ledger
        let late = machine.handle(.record(.partial(Self.flushed(data, chunks: [0])[0]), at: start + .seconds(1)))
        #expect(late.allSatisfy { if case .publish = $0 { true } else { false } })
        #expect(machine.ledger.duplicatesDropped == ledger.duplicatesDropped && machine.ledger.accepted == ledger.accepted)
        #expect(machine.handle(.tick(start + .seconds(2))).allSatisfy { if case .publish = $0 { true } else { false } })
        // Its value issues SFDA's mixing pass.
        let moved = machine.handle(.computed(.sfdaFirstFit, asked[0](), at: start + .seconds(3)))
        #expect(moved.contains { if case .issue(_, _, .tasksIssued(.sfdaMix, _)?) = $0 { true } else { false } })
    }

    /// A run's chunks of features alone and chunks with softmax outputs (a stray producer) have
    /// different Z: each kind makes a partial of its own, for the aggregator to judge against
    /// the run's manifest.
    @Test func chunksWithSoftmaxOutputsMakeAPartialOfTheirOwn() throws {
        let data = Data(seed: 5)
        let withTheta = try WorkerFixture(run: Self.identity.id, rows: 6, rowsPerChunk: 6, sourceClasses: 4, targetClasses: Self.y)
        var buffer = Pass1Buffer(policy: Self.policy(chunks: 1))
        #expect(buffer.add(data.chunk(0), bytes: 100, now: .now) == .added)
        #expect(buffer.add(withTheta.chunks[0].frame, bytes: 100, now: .now) == .added)
        let (frames, _, partials) = buffer.flush()
        #expect(partials == 2)
        #expect(Set(frames.map(\.sourceClasses)) == [0, 4])
        #expect(frames.filter { $0.sourceClasses == 0 }.allSatisfy { $0.section != .joint })
    }

    @Test func aRepairIsThePartialPassOneWouldHaveFlushed() throws {
        let data = Data(seed: 8)
        guard let frames = try repairedPartial(
            of: [2, 5, 7].map { data.chunk($0) }, maxMessageBytes: Self.policy(chunks: 3).maxMessageBytes)
        else { return }
        #expect(frames == Self.flushed(data, chunks: [2, 5, 7]), "same statistics, same parts, same partial id")
        #expect(frames.allSatisfy { $0.section != .joint && $0.sourceClasses == 0 })
    }

    /// A run of features alone has no pass 2; a task that asks for one anyway (a foreign or
    /// broken aggregator) fails the run naming the chunk, rather than counting no rows.
    @Test func aPass2TaskOverFeaturesAloneIsRefused() throws {
        let data = Data(seed: 9)
        let conditionalOwner = try WorkerFixture(run: Self.identity.id, rows: 6, rowsPerChunk: 6, targetClasses: Self.y)
        var records = InMemoryRecords(conditionalRecords: try conditionalOwner.conditionalParts(cellsPerPart: 5))
        let chunk = data.chunk(1)
        let location = RecordLocation(partition: 0, offset: 1)
        records.chunkRecords[location] = chunk
        let task = TaskFrame(
            run: Self.identity.id, pass: .eep, conditional: records.conditionalRecords.keys.sorted { $0.offset < $1.offset },
            chunks: [LocatedChunk(id: chunk.id, location: location)])
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        var conditionals = records
        guard case .rejection(let rejection) = try runner.run(task, chunks: &records, conditionals: &conditionals) else {
            Issue.record("a pass-2 task over features alone was not refused")
            return
        }
        #expect(rejection.chunk == chunk.id && rejection.run.id == Self.identity.id)
        #expect(rejection.reason == "shard 0 rows 6..<12: the chunk carries features alone, no softmax outputs for pass 2")
    }
}
