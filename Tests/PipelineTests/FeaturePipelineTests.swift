import LEEPCore
import TestSupport
import Testing
import WireFormat

@testable import Pipeline

/// Features through the worker's buffer and the aggregator's ledger, without a broker: chunks
/// with features become partials whose two sections travel in parts, partials merge with the
/// exactly-once rules of pass 1, and the final record's LogME and H-scores are those of the
/// whole data. Bad features, and shapes that differ from the manifest's, fail only their run.
@Suite struct FeaturePipelineTests {
    static let identity = RunIdentity(id: "run-f", model: "m", dataset: "d")
    static let (rows, z, y, d, rowsPerChunk) = (60, 3, 3, 5, 6)

    /// Seeded rows: θ beside the feature rows (`FeatureRows`).
    struct Data {
        var theta: [Double] = []
        var rows: FeatureRows
        var labels: [Int32] { rows.labels }
        var features: [Float] {
            get { rows.features }
            set { rows.features = newValue }
        }

        init(seed: UInt64) {
            rows = FeatureRows(seed: seed, rows: FeaturePipelineTests.rows, classes: y, width: d)
            var generator = SeededGenerator(seed: seed &+ 1)
            for _ in 0..<FeaturePipelineTests.rows {
                let weights = (0..<z).map { _ in Double.random(in: 0.05...1, using: &generator) }
                let total = weights.reduce(0, +)
                theta += weights.map { $0 / total }
            }
        }

        /// Chunk `index` (rows index·6 ..< index·6 + 6) as a decoded version-2 chunk frame.
        func chunk(_ index: Int, width: Int = FeaturePipelineTests.d, poison: Float? = nil) -> ChunkFrame {
            let first = index * rowsPerChunk
            let range = first..<(first + rowsPerChunk)
            var values = rows.features(of: range)
            if let poison { values[2 * d + 1] = poison }
            if width != d { values = (0..<(rowsPerChunk * width)).map { Float($0) } }
            let bytes = Array(theta[(first * z)..<(range.upperBound * z)]).withUnsafeBufferPointer { theta in
                Array(labels[range]).withUnsafeBufferPointer { labels in
                    values.withUnsafeBytes { raw in
                        ChunkFrame.encode(
                            run: identity, shard: 0, shardCount: 1, targetClasses: y,
                            rows: PredictionChunk(probabilities: theta, labels: labels, sourceClasses: z, firstRow: first),
                            features: FeatureRowsView(width: width, type: .float32, bytes: raw))
                    }
                }
            }
            guard case .chunk(let frame) = try! Frame.decode(bytes) else { fatalError("not a chunk") }
            return frame
        }

        /// The feature statistics of all rows, straight from LEEPCore.
        func direct() throws -> FeatureStatistics { try rows.directSet()[FeatureStatistics.self]! }

        /// Every statistic of all rows at once.
        func directSet() throws -> FeatureStatisticSet { try rows.directSet() }
    }

    /// A message limit that leaves 100 bytes of payload a part to a partial of `chunks` chunks,
    /// so that both sections of every partial travel in several parts (9 joint cells of 16
    /// bytes, 44 feature values of 8).
    static func policy(chunks: Int = 2) -> Pass1Buffer.Policy {
        Pass1Buffer.Policy(
            interval: .seconds(60), maxPendingBytes: 1 << 30, maxChunksPerPartial: 1000,
            maxMessageBytes: PartialFrame.headroomBytes + PartialFrame.bytesPerChunk * chunks + 100)
    }

    static func manifest(featureWidth: Int = d, shard: UInt32 = 0) -> Frame {
        .manifest(
            of: identity, shard: shard, sourceClasses: z, targetClasses: y, rows: rows, rowsPerChunk: rowsPerChunk,
            featureWidth: featureWidth)
    }

    /// The partial frames of `chunks` flushed from one worker's buffer.
    static func partials(_ data: Data, chunks: [Int]) -> [Frame] {
        var buffer = Pass1Buffer(policy: policy(chunks: chunks.count))
        for index in chunks { #expect(buffer.add(data.chunk(index), bytes: 100, now: .now) == .added) }
        let frames = buffer.flush().frames
        #expect(frames.contains { $0.section == .statistic(.moments) } && frames.filter { $0.section == .joint }.count > 1)
        return frames.map { .partial($0) }
    }

    @Test(arguments: [UInt64(1), 2, 3]) func workersAndLedgerGiveTheWholeDataScores(seed: UInt64) throws {
        let data = Data(seed: seed)
        var generator = SeededGenerator(seed: seed)
        // Three workers' partials, one of them delivered twice, all parts in a random order.
        let chunks = Array(0..<(Self.rows / Self.rowsPerChunk)).shuffled(using: &generator)
        let frames = Self.partials(data, chunks: Array(chunks[0..<3])) + Self.partials(data, chunks: Array(chunks[3..<7]))
            + Self.partials(data, chunks: Array(chunks[7...]))
        var ledger = RunLedger(run: Self.identity.id)
        for frame in ([Self.manifest()] + frames + Self.partials(data, chunks: Array(chunks[0..<3]))).shuffled(using: &generator) {
            if case .failure(let reason) = ledger.apply(frame) { Issue.record("failed: \(reason)") }
        }
        // The copy is dropped whole, or its parts merely repeat the original's (same partial id).
        #expect(ledger.isPass1Complete && ledger.duplicatesDropped <= 1)
        let expected = try data.direct()
        let merged = try #require(ledger.features?[FeatureStatistics.self])
        #expect(merged.sampleCount == Self.rows && merged.classCounts == expected.classCounts)
        #expect(normwiseRelativeError(merged.centredSquares, expected.centredSquares) < 1e-12)
        let (ids, results) = try pass2(data, joint: ledger.joint!)
        for result in results { _ = ledger.apply(result) }
        guard case .success = ledger.leepScore(tasks: Set(ids), accuracy: false), case .success(let statistics)? = ledger.checkedFeatures()
        else {
            Issue.record("no final score")
            return
        }
        let direct = FeatureMetricReport(statistics: try data.directSet())
        let report = FeatureMetricReport(statistics: statistics)
        #expect(statistics.featureWidth == Self.d)
        #expect(report.values.count == direct.values.count && report.unscored.isEmpty)
        for (key, want) in direct.values {
            let got = try #require(report.values[key] ?? nil, "\(key)")
            let value = try #require(want, "\(key)")
            #expect(abs(got - value) <= 1e-10 * abs(value), "\(key): \(got) vs \(value)")
        }
    }

    /// One pass-2 task over every chunk, as a worker would answer it.
    func pass2(_ data: Data, joint: JointAccumulator) throws -> ([UInt64], [Frame]) {
        let ids = (0..<(Self.rows / Self.rowsPerChunk)).map {
            ChunkID(shard: 0, firstRow: UInt64($0 * Self.rowsPerChunk), rowCount: UInt32(Self.rowsPerChunk))
        }
        let id = TaskFrame.id(run: Self.identity.id, pass: .eep, chunks: ids)
        var eep = EEPAccumulator()
        try data.theta.withUnsafeBufferPointer { theta in
            try data.labels.withUnsafeBufferPointer { labels in
                try eep.add(
                    PredictionChunk(probabilities: theta, labels: labels, sourceClasses: Self.z),
                    conditional: ConditionalTable(joint: joint), accuracy: false)
            }
        }
        return ([id], [.taskResult(TaskResultFrame(
            run: Self.identity.id, taskID: id, sampleCount: UInt64(eep.sampleCount), logEEPSum: eep.logEEPSum, hits: 0))])
    }

    @Test func aRepairOfFeatureChunksIsThePartialPassOneWouldHaveFlushed() throws {
        let data = Data(seed: 8)
        guard let frames = try repairedPartial(
            of: [2, 5, 7].map { data.chunk($0) }, maxMessageBytes: Self.policy(chunks: 3).maxMessageBytes)
        else { return }
        let passOne = Self.partials(data, chunks: [2, 5, 7]).compactMap { frame -> PartialFrame? in
            if case .partial(let part) = frame { part } else { nil }
        }
        #expect(frames == passOne, "same joint, same feature statistics, same partial id")
        #expect(frames.contains { $0.section == .statistic(.moments) && $0.featureWidth == Self.d })
    }

    /// Statistics larger than the chunk bytes they cover are not flushed by the interval alone
    /// (the broker would get far more bytes than the chunks it served), until they have waited
    /// `statisticsPatience` intervals; a pause of the stream flushes them at once.
    @Test func theIntervalDoesNotFlushStatisticsLargerThanTheirChunks() {
        let data = Data(seed: 10)
        var policy = Self.policy()
        policy.interval = .seconds(1)
        var buffer = Pass1Buffer(policy: policy)
        let start = ContinuousClock.now
        #expect(buffer.add(data.chunk(0), bytes: 100, now: start) == .added)
        #expect(buffer.statisticsBytes > 100)
        #expect(!buffer.isDue(now: start + .seconds(1), idle: false), "1 s: statistics larger than their 100 chunk bytes wait")
        #expect(buffer.isDue(now: start + .seconds(1), idle: true), "a pause of the stream flushes them")
        #expect(!buffer.isDue(now: start + .seconds(59), idle: false))
        #expect(buffer.isDue(now: start + .seconds(60), idle: false), "after 60 intervals they go anyway")
        // Chunks as large as the statistics: the interval flushes as before.
        #expect(buffer.add(data.chunk(1), bytes: buffer.statisticsBytes, now: start) == .added)
        #expect(buffer.isDue(now: start + .seconds(1), idle: false))
    }

    @Test func aRunsFeatureStatisticsCountTowardTheFlushThreshold() {
        let data = Data(seed: 9)
        var policy = Self.policy()
        let statistics = FeatureStatisticSet(featureWidth: Self.d, targetClasses: Self.y).byteCount
        #expect(statistics == 8 * (FeatureStatistics.flattenedCount(targetClasses: Self.y, featureWidth: Self.d)
            + ClassVariances.flattenedCount(targetClasses: Self.y, featureWidth: Self.d)
            + ClassScatters.flattenedCount(targetClasses: Self.y, featureWidth: Self.d)))
        policy.maxPendingBytes = statistics + 150
        var buffer = Pass1Buffer(policy: policy)
        let now = ContinuousClock.now
        #expect(buffer.add(data.chunk(0), bytes: 100, now: now) == .added)
        #expect(buffer.pendingBytes == statistics + 100)
        #expect(!buffer.isDue(now: now, idle: false))
        #expect(buffer.add(data.chunk(1), bytes: 100, now: now) == .added)
        #expect(buffer.pendingBytes == statistics + 200, "the statistics count once per run")
        #expect(buffer.isDue(now: now, idle: false))
    }

    @Test func aChunkWithANonFiniteFeatureIsRejectedNamingTheRowAndDropsItsRunsSums() {
        let data = Data(seed: 4)
        var buffer = Pass1Buffer(policy: Self.policy())
        #expect(buffer.add(data.chunk(0), bytes: 100, now: .now) == .added)
        let outcome = buffer.add(data.chunk(1, poison: .nan), bytes: 100, now: .now)
        guard case .rejected(let reason) = outcome else {
            Issue.record("accepted: \(outcome)")
            return
        }
        // Chunk 1 starts at row 6; its third row is row 8, feature 1.
        #expect(reason.contains("row 8: feature 1 is nan; features must be finite"), "\(reason)")
        // The rejection fails the run: its other pending sums would count for nothing.
        #expect(buffer.pendingBytes == 0 && buffer.statisticsBytes == 0)
        #expect(buffer.flush().frames.isEmpty)
    }

    @Test func chunksOfAnotherWidthMakeAPartialOfTheirOwnThatFailsTheRunNamingThem() {
        let data = Data(seed: 5)
        var buffer = Pass1Buffer(policy: Self.policy())
        #expect(buffer.add(data.chunk(0), bytes: 100, now: .now) == .added)
        #expect(buffer.add(data.chunk(1, width: 4), bytes: 100, now: .now) == .added)
        let (frames, _, partials) = buffer.flush()
        #expect(partials == 2)
        var ledger = RunLedger(run: Self.identity.id)
        var failures: [String] = []
        for frame in [Self.manifest()] + frames.map(Frame.partial) {
            if case .failure(let reason) = ledger.apply(frame) { failures.append(reason) }
        }
        #expect(!failures.isEmpty && Set(failures) == ["chunk shard 0 rows 6..<12 has 4 features a row, its run's manifest 5"])
    }

    @Test func aPartialWithoutFeaturesInARunWithThemFailsTheRun() {
        let data = Data(seed: 6)
        var ledger = RunLedger(run: Self.identity.id)
        var failures: [String] = []
        // The features came first, then a manifest that says the run has none.
        for frame in Self.partials(data, chunks: [0]) + [Self.manifest(featureWidth: 0)] {
            if case .failure(let reason) = ledger.apply(frame) { failures.append(reason) }
        }
        #expect(failures.first == "chunk shard 0 rows 0..<6 has 5 features a row, its run's manifest none")
    }

    @Test func manifestsThatDisagreeOnTheWidthFailTheRun() {
        var ledger = RunLedger(run: Self.identity.id)
        _ = ledger.apply(Self.manifest())
        #expect(ledger.apply(Self.manifest(featureWidth: 7)) == .failure("the manifest of shard 0 has 7 features a row, the run has 5"))
    }

    @Test func aPartialMissingItsFeatureSectionIsIgnored() {
        let data = Data(seed: 7)
        let complete = Self.partials(data, chunks: [0]).compactMap { frame -> PartialFrame? in
            guard case .partial(let part) = frame else { return nil }
            return part
        }
        // The joint parts alone, renumbered as if they were the whole partial: no worker sends
        // that, and accepting it would leave the run's statistics short of these rows.
        let joint = complete.filter { $0.section == .joint }
        var ledger = RunLedger(run: Self.identity.id)
        for (index, part) in joint.enumerated() {
            let forged = PartialFrame(
                run: part.identity, partialID: part.partialID, targetClasses: part.targetClasses,
                sourceClasses: part.sourceClasses, featureWidth: Self.d, sampleCount: part.sampleCount, chunks: part.chunks,
                part: MatrixPart(
                    partIndex: UInt32(index), partCount: UInt32(joint.count), cellStart: part.part.cellStart,
                    cellCount: part.part.cellCount),
                jointSums: part.jointSums, argmaxCounts: part.argmaxCounts)
            #expect(ledger.apply(.partial(forged)) == .none)
        }
        #expect(ledger.accepted.isEmpty && ledger.features == nil)
    }
}
