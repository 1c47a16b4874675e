import Kafka
import LEEPCore
import Logging
import Testing
import WireFormat

@testable import Pipeline

/// The worker's pass 1 without a broker: what a chunk does to the sums, when they are flushed,
/// and that a flush carries every run's exact sums.
@Suite struct Pass1BufferTests {
    static let start = ContinuousClock.now

    static func buffer(
        interval: Duration = .seconds(1), maxPendingBytes: Int = 1 << 30, maxChunksPerPartial: Int = 4096
    ) -> Pass1Buffer {
        Pass1Buffer(policy: .init(
            interval: interval, maxPendingBytes: maxPendingBytes, maxChunksPerPartial: maxChunksPerPartial,
            maxMessageBytes: 1_000_000))
    }

    @Test func flushesExactlyTheSumsOfTheWholeData() throws {
        let run = try WorkerFixture(run: "r", rows: 103, rowsPerChunk: 10)
        var buffer = Self.buffer()
        for chunk in run.chunks { #expect(buffer.add(chunk.frame, bytes: chunk.bytes, now: Self.start) == .added) }
        let flushed = buffer.flush()
        #expect(flushed.partials == 1 && buffer.isEmpty)
        let partial = assembled(flushed.frames)
        let joint = try run.joint()
        #expect(partial.joint == joint.jointSums, "chunk by chunk adds in the same order as the whole data")
        #expect(partial.counts == joint.argmaxCounts && partial.samples == 103)
        #expect(partial.chunks == run.chunks.map(\.frame.id))
    }

    /// At a sampling rate, each chunk's rows with the smallest keys travel verbatim beside its
    /// sums, once per chunk; the same rows whichever worker reads the chunk.
    @Test func sampledRowsTravelWithTheSums() throws {
        let run = try WorkerFixture(run: "r", rows: 103, rowsPerChunk: 40)
        var buffer = Pass1Buffer(policy: .init(
            interval: .seconds(1), maxPendingBytes: 1 << 30, maxChunksPerPartial: 4096, maxMessageBytes: 1_000_000,
            rowSampleRate: 1.0 / 16))
        for chunk in run.chunks + [run.chunks[0]] { _ = buffer.add(chunk.frame, bytes: chunk.bytes, now: Self.start) }
        let samples = buffer.flush().samples
        #expect(samples.map(\.chunk) == run.chunks.map(\.frame.id), "one sample a chunk, none for a duplicate")
        #expect(samples.map(\.rows.count) == [3, 3, 2], "⌈rows / 16⌉ of each")
        let z = run.sourceClasses
        for sample in samples {
            let keys = (0..<sample.chunk.rowCount).map {
                RowSampleFrame.key(run: "r", shard: sample.chunk.shard, row: sample.chunk.firstRow + UInt64($0))
            }
            let chosen = Set(sample.rows.map { keys[Int($0)] })
            #expect(keys.filter { !chosen.contains($0) }.allSatisfy { $0 > chosen.max()! }, "the smallest keys")
            for (index, row) in sample.rows.enumerated() {
                let global = Int(sample.chunk.firstRow) + Int(row)
                #expect(sample.labels[index] == run.labels[global])
                #expect(Array(sample.probabilities[(index * z)..<((index + 1) * z)]) == Array(run.theta[(global * z)..<((global + 1) * z)]))
            }
        }
        // The aggregator keeps the smallest keys, trimming once a quarter past its capacity.
        let allKeys = samples.flatMap { sample in
            sample.rows.map { RowSampleFrame.key(run: "r", shard: sample.chunk.shard, row: sample.chunk.firstRow + UInt64($0)) }
        }
        var reservoir = RowSampleReservoir(capacity: 4)
        for sample in samples + samples { reservoir.add(sample) }
        #expect(reservoir.entries.map(\.key) == Array(allKeys.sorted().prefix(4)), "each chunk once, the smallest keys kept")
        let accepted = Set(run.chunks.prefix(2).map(\.frame.id))
        #expect(reservoir.rows(of: accepted).count == reservoir.entries.filter { accepted.contains($0.chunk) }.count)
        #expect(reservoir.rows(of: []).isEmpty, "rows of accepted chunks only")
    }

    @Test func oneFlushCarriesEveryRun() throws {
        let first = try WorkerFixture(run: "a", rows: 30, rowsPerChunk: 10, seed: 1)
        let second = try WorkerFixture(run: "b", rows: 20, rowsPerChunk: 10, sourceClasses: 4, seed: 2)
        var buffer = Self.buffer()
        for chunk in first.chunks + second.chunks { _ = buffer.add(chunk.frame, bytes: chunk.bytes, now: Self.start) }
        let flushed = buffer.flush()
        #expect(flushed.partials == 2)
        #expect(Set(flushed.frames.map(\.run)) == ["a", "b"])
        for fixture in [first, second] {
            let partial = assembled(flushed.frames.filter { $0.run == fixture.run.id })
            #expect(partial.joint == (try fixture.joint()).jointSums)
        }
    }

    @Test func theSameChunkTwiceCountsOnce() throws {
        let run = try WorkerFixture(run: "r", rows: 20, rowsPerChunk: 10)
        var buffer = Self.buffer()
        let chunk = run.chunks[0]
        #expect(buffer.add(chunk.frame, bytes: chunk.bytes, now: Self.start) == .added)
        #expect(buffer.add(chunk.frame, bytes: chunk.bytes, now: Self.start) == .duplicate)
        #expect(buffer.pendingBytes == chunk.bytes)
        let partial = assembled(buffer.flush().frames)
        #expect(partial.samples == 10 && partial.chunks == [chunk.frame.id])
    }

    /// The worker cannot know which of two class counts is its run's (the manifest can): each
    /// makes a partial of its own, for the aggregator to judge.
    @Test func aChunkWhoseClassCountDiffersMakesAPartialOfItsOwn() throws {
        let run = try WorkerFixture(run: "r", rows: 10, rowsPerChunk: 10, sourceClasses: 7)
        let other = try WorkerFixture(run: "r", rows: 20, rowsPerChunk: 10, sourceClasses: 5)
        var buffer = Self.buffer()
        #expect(buffer.add(other.chunks[1].frame, bytes: 1, now: Self.start) == .added)
        #expect(buffer.add(run.chunks[0].frame, bytes: 1, now: Self.start) == .added)
        let frames = buffer.flush().frames
        #expect(Set(frames.map(\.sourceClasses)) == [5, 7])
        #expect(frames.first { $0.sourceClasses == 7 }?.chunks == [run.chunks[0].frame.id], "the sums are not mixed")
    }

    @Test func aRejectedFirstChunkLeavesNothingToFlush() throws {
        var bad = try WorkerFixture(run: "r", rows: 10, rowsPerChunk: 10).chunks[0].frame
        bad = try Self.withNaN(bad)
        var buffer = Self.buffer()
        guard case .rejected(let reason) = buffer.add(bad, bytes: 1, now: Self.start) else {
            Issue.record("a NaN was accepted")
            return
        }
        #expect(reason.contains("nan"))
        #expect(buffer.isEmpty && !buffer.isDue(now: Self.start, idle: true))
    }

    @Test func aRejectedChunkDropsItsRunsPendingSumsAndNoOthers() throws {
        let run = try WorkerFixture(run: "r", rows: 20, rowsPerChunk: 10)
        let other = try WorkerFixture(run: "o", rows: 10, rowsPerChunk: 10)
        var buffer = Self.buffer()
        #expect(buffer.add(run.chunks[0].frame, bytes: 3, now: Self.start) == .added)
        #expect(buffer.add(other.chunks[0].frame, bytes: 5, now: Self.start) == .added)
        // A bad row in the middle of the chunk: the rows before it were added as they were
        // checked, so the run's sums are dropped; the rejection names the first bad row.
        guard case .rejected(let reason) = buffer.add(try Self.withNaN(run.chunks[1].frame, row: 4), bytes: 3, now: Self.start) else {
            Issue.record("a NaN was accepted")
            return
        }
        #expect(reason.contains("row 14") && reason.contains("nan"), "\(reason)")
        #expect(buffer.pendingBytes == 5, "only the other run's bytes are pending")
        let frames = buffer.flush().frames
        #expect(!frames.isEmpty && frames.allSatisfy { $0.run == "o" && $0.chunks == [other.chunks[0].frame.id] })
    }

    @Test func flushesWhenTheStreamPauses() throws {
        let run = try WorkerFixture(run: "r", rows: 10, rowsPerChunk: 10)
        var buffer = Self.buffer()
        #expect(!buffer.isDue(now: Self.start, idle: true), "nothing pending, nothing due")
        _ = buffer.add(run.chunks[0].frame, bytes: 1, now: Self.start)
        #expect(!buffer.isDue(now: Self.start, idle: false))
        #expect(buffer.isDue(now: Self.start, idle: true))
    }

    @Test func flushesOnceTheOldestSumsWaitedTheInterval() throws {
        let run = try WorkerFixture(run: "r", rows: 20, rowsPerChunk: 10)
        var buffer = Self.buffer(interval: .seconds(1))
        _ = buffer.add(run.chunks[0].frame, bytes: 1, now: Self.start)
        _ = buffer.add(run.chunks[1].frame, bytes: 1, now: Self.start + .milliseconds(900))
        #expect(!buffer.isDue(now: Self.start + .milliseconds(999), idle: false))
        #expect(buffer.isDue(now: Self.start + .seconds(1), idle: false), "counted from the first chunk")
        _ = buffer.flush()
        _ = buffer.add(run.chunks[0].frame, bytes: 1, now: Self.start + .seconds(5))
        #expect(!buffer.isDue(now: Self.start + .seconds(5.5), idle: false), "a flush starts the interval again")
    }

    @Test func flushesAtTheByteLimit() throws {
        let run = try WorkerFixture(run: "r", rows: 20, rowsPerChunk: 10)
        var buffer = Self.buffer(maxPendingBytes: 1_000)
        _ = buffer.add(run.chunks[0].frame, bytes: 600, now: Self.start)
        #expect(!buffer.isDue(now: Self.start, idle: false))
        _ = buffer.add(run.chunks[1].frame, bytes: 400, now: Self.start)
        #expect(buffer.isDue(now: Self.start, idle: false))
    }

    @Test func flushesWhenOnePartialCoversTheMostChunks() throws {
        let run = try WorkerFixture(run: "r", rows: 30, rowsPerChunk: 10)
        var buffer = Self.buffer(maxChunksPerPartial: 3)
        for chunk in run.chunks.prefix(2) { _ = buffer.add(chunk.frame, bytes: 1, now: Self.start) }
        #expect(!buffer.isDue(now: Self.start, idle: false))
        _ = buffer.add(run.chunks[2].frame, bytes: 1, now: Self.start)
        #expect(buffer.isDue(now: Self.start, idle: false))
        _ = buffer.flush()
        #expect(!buffer.isDue(now: Self.start, idle: true))
    }

    /// `frame` with a NaN in the first probability of its `row`-th row.
    static func withNaN(_ frame: ChunkFrame, row: Int = 0) throws -> ChunkFrame {
        guard case .float64(var values) = frame.probabilities else { throw FrameError.unknownKind(0) }
        values[row * frame.sourceClasses] = .nan
        let labels = frame.labels
        let bytes = values.withUnsafeBufferPointer { theta in
            labels.withUnsafeBufferPointer { labels in
                ChunkFrame.encode(
                    run: frame.run, shard: frame.id.shard, shardCount: frame.shardCount, targetClasses: frame.targetClasses,
                    rows: PredictionChunk(
                        probabilities: theta, labels: labels, sourceClasses: frame.sourceClasses, firstRow: Int(frame.id.firstRow)))
            }
        }
        guard case .chunk(let bad) = try Frame.decode(bytes) else { throw FrameError.unknownKind(0) }
        return bad
    }
}

/// The worker's outbox: what a round delivers, in one batch, and when offsets may be committed.
@Suite struct WorkerOutboxTests {
    static func outbox(sink: InMemorySink, health: RoleHealth = RoleHealth(role: "worker")) -> WorkerOutbox {
        WorkerOutbox(
            pass1: Pass1BufferTests.buffer(), sink: sink, runsTopic: "runs", metrics: WorkerMetrics(),
            delivery: PersistentDelivery(health: health, logger: Logger(label: "test"), initialDelay: .milliseconds(1)))
    }

    @Test func aRoundIsOneBatchAndCommitsOnlyWhenNothingIsOwed() throws {
        let first = try WorkerFixture(run: "a", rows: 20, rowsPerChunk: 10, seed: 1)
        let second = try WorkerFixture(run: "b", rows: 10, rowsPerChunk: 10, seed: 2)
        let sink = InMemorySink()
        let outbox = Self.outbox(sink: sink)
        for chunk in first.chunks + second.chunks { _ = outbox.add(chunk.frame, bytes: chunk.bytes, now: .now) }
        outbox.enqueue([OutgoingRecord(topic: "runs", key: "a", value: [1])])
        #expect(try !outbox.deliver(flushingPass1: false), "pass-1 sums are still owed")
        #expect(sink.batches.map(\.count) == [1])
        #expect(try outbox.deliver(flushingPass1: true))
        #expect(sink.batches.count == 2 && sink.batches[1].count == 2, "both runs' partials in one batch")
        #expect(try outbox.deliver(flushingPass1: true) && sink.batches.count == 2, "nothing owed, nothing sent")
        #expect(outbox.partialsFlushed == 2)
    }

    @Test func aFailedDeliveryIsRetriedBeforeTheRoundEnds() throws {
        let run = try WorkerFixture(run: "a", rows: 10, rowsPerChunk: 10)
        let sink = InMemorySink(failures: 2)
        let outbox = Self.outbox(sink: sink)
        _ = outbox.add(run.chunks[0].frame, bytes: 1, now: .now)
        #expect(try outbox.deliver(flushingPass1: true))
        #expect(sink.attempts == 3 && sink.batches.count == 1)
    }

    @Test func healthReportsTheDeliveryProblemUntilItIsOver() throws {
        let run = try WorkerFixture(run: "a", rows: 10, rowsPerChunk: 10)
        let health = RoleHealth(role: "worker")
        let sink = InMemorySink(failures: 3)
        sink.onAttempt = { attempt in
            // Seen from inside the retries: unhealthy from the first failure on.
            if attempt == 3 { #expect(health.problem?.contains("delivery: cannot deliver 1 records") == true) }
        }
        let outbox = Self.outbox(sink: sink, health: health)
        _ = outbox.add(run.chunks[0].frame, bytes: 1, now: .now)
        #expect(try outbox.deliver(flushingPass1: true))
        #expect(health.isHealthy, "healthy again once delivered")
    }

    /// A delivery that keeps failing is given up after `replaceAfter`, as fatal: the worker's
    /// clients are then replaced rather than retried forever.
    @Test func aDeliveryFailingForTooLongIsGivenUpAsFatal() throws {
        let run = try WorkerFixture(run: "a", rows: 10, rowsPerChunk: 10)
        let sink = InMemorySink(failures: .max)
        var delivery = PersistentDelivery(health: RoleHealth(role: "worker"), logger: Logger(label: "test"), initialDelay: .milliseconds(1))
        delivery.replaceAfter = .milliseconds(30)
        let outbox = WorkerOutbox(pass1: Pass1BufferTests.buffer(), sink: sink, runsTopic: "runs", metrics: WorkerMetrics(), delivery: delivery)
        _ = outbox.add(run.chunks[0].frame, bytes: 1, now: .now)
        #expect { try outbox.deliver(flushingPass1: true) } throws: { ($0 as? KafkaError)?.isFatal == true }
        #expect(sink.attempts > 1, "retried before giving up")
    }

    /// A fatally failed sink is not retried: the error reaches the worker's loop (which is then
    /// replaced), and no later delivery may report that nothing is owed — the records taken
    /// for the failed batch are lost, so committing would lose their chunks.
    @Test func aFatalFailureIsThrownAndNothingIsCommittedAfterIt() throws {
        let run = try WorkerFixture(run: "a", rows: 20, rowsPerChunk: 10)
        let sink = InMemorySink(failures: 100, fatal: true)
        let outbox = Self.outbox(sink: sink)
        _ = outbox.add(run.chunks[0].frame, bytes: 1, now: .now)
        #expect(throws: KafkaError.self) { try outbox.deliver(flushingPass1: true) }
        #expect(sink.attempts == 1, "not retried")
        #expect(throws: KafkaError.self) { try outbox.deliver(flushingPass1: true) }
        #expect(sink.attempts == 1, "nothing sent after a fatal failure")
    }
}
