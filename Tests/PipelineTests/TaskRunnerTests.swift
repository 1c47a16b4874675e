import LEEPCore
import Testing
import WireFormat

@testable import Pipeline

/// Repair and pass-2 tasks without a broker: where the chunks come from, what a wrong record
/// does, and that the results equal a direct computation over the whole data.
@Suite struct TaskRunnerTests {
    static let run = try! WorkerFixture(run: "r", rows: 95, rowsPerChunk: 10)

    /// A cache holding the chunks at `cached` (indices), and a broker holding every chunk and
    /// the conditional in parts of 5 cells.
    static func sources(cached: [Int]) throws -> (chunks: CachedChunkSource<InMemoryRecords>, broker: InMemoryRecords) {
        var cache = ChunkCache(capacityBytes: 1 << 30)
        for index in cached {
            cache.insert(run.chunks[index].frame, at: run.chunks[index].location, bytes: run.chunks[index].bytes)
        }
        var broker = InMemoryRecords(conditionalRecords: try run.conditionalParts(cellsPerPart: 5))
        for chunk in run.chunks { broker.chunkRecords[chunk.location] = chunk.frame }
        return (CachedChunkSource(cache: cache, fallback: broker), broker)
    }

    static func task(_ pass: TaskFrame.Pass, chunks: [LocatedChunk] = run.located) throws -> TaskFrame {
        let conditional = pass.readsSharedTables ? try run.conditionalParts(cellsPerPart: 5).keys.sorted { $0.offset < $1.offset } : []
        return TaskFrame(run: run.run.id, pass: pass, conditional: conditional, chunks: chunks)
    }

    static func result(_ output: TaskRunner.Output) -> TaskResultFrame? {
        if case .result(let parts) = output, parts.count == 1 { parts[0] } else { nil }
    }

    @Test(arguments: [false, true])
    func passTwoEqualsADirectComputation(accuracy: Bool) throws {
        var (chunks, broker) = try Self.sources(cached: Array(Self.run.chunks.indices))
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        let task = try Self.task(accuracy ? .eepWithAccuracy : .eep)
        let result = try #require(Self.result(try runner.run(task, chunks: &chunks, conditionals: &broker)))
        let direct = try Self.run.eep(accuracy: accuracy)
        #expect(result.taskID == task.taskID && result.sampleCount == 95)
        #expect(abs(result.logEEPSum - direct.logEEPSum) <= 1e-12 * abs(direct.logEEPSum))
        #expect(result.hits == UInt64(direct.hits))
    }

    @Test func cachedChunksAreNotFetched() throws {
        var (chunks, broker) = try Self.sources(cached: Array(Self.run.chunks.indices))
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        _ = try runner.run(try Self.task(.eep), chunks: &chunks, conditionals: &broker)
        #expect(chunks.fallback.chunksAsked.isEmpty)
        #expect(chunks.cache.hits == Self.run.chunks.count && chunks.cache.bytes == 0, "each chunk leaves when taken")
    }

    @Test func chunksTheCacheLacksAreFetched() throws {
        var (chunks, broker) = try Self.sources(cached: [0, 2, 4])
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        let result = try #require(Self.result(try runner.run(try Self.task(.eep), chunks: &chunks, conditionals: &broker)))
        #expect(Set(chunks.fallback.chunksAsked.map(\.location.offset)) == Set((0..<10).filter { ![0, 2, 4].contains($0) }))
        let direct = try Self.run.eep(accuracy: false)
        #expect(abs(result.logEEPSum - direct.logEEPSum) <= 1e-12 * abs(direct.logEEPSum))
    }

    @Test func aRepairIsThePartialPassOneWouldHaveFlushed() throws {
        var (chunks, broker) = try Self.sources(cached: [1])
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        guard case .partial(let frames) = try runner.run(try Self.task(.repair), chunks: &chunks, conditionals: &broker) else {
            Issue.record("a repair published no partial")
            return
        }
        var buffer = Pass1BufferTests.buffer()
        for chunk in Self.run.chunks { _ = buffer.add(chunk.frame, bytes: 1, now: .now) }
        let passOne = buffer.flush().frames
        #expect(frames == passOne, "same sums, same chunks, same partial id")
        #expect(broker.conditionalFetches == 0, "a repair needs no conditional")
    }

    @Test func aMissingRecordRejectsTheRun() throws {
        var (chunks, broker) = try Self.sources(cached: [])
        chunks.fallback.chunkRecords[Self.run.chunks[3].location] = nil
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        guard case .rejection(let rejection) = try runner.run(try Self.task(.eep), chunks: &chunks, conditionals: &broker) else {
            Issue.record("a missing chunk was not rejected")
            return
        }
        #expect(rejection.run.id == "r" && rejection.chunk == Self.run.chunks[3].frame.id)
        #expect(rejection.reason.contains("partition 0 offset 3) is missing: no record at offset 3"), "names the location")
    }

    @Test func aForeignRecordRejectsTheRun() throws {
        var (chunks, broker) = try Self.sources(cached: [])
        let other = try WorkerFixture(run: "other", rows: 95, rowsPerChunk: 10)
        // Another run's chunk with the same rows sits where the manifest points.
        chunks.fallback.chunkRecords[Self.run.chunks[5].location] = other.chunks[5].frame
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        guard case .rejection(let rejection) = try runner.run(try Self.task(.repair), chunks: &chunks, conditionals: &broker) else {
            Issue.record("a foreign chunk was not rejected")
            return
        }
        #expect(rejection.chunk == Self.run.chunks[5].frame.id)
        #expect(rejection.reason.contains("is another chunk"))
    }

    @Test func theConditionalIsFetchedOncePerRun() throws {
        var (chunks, broker) = try Self.sources(cached: [])
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        let halves = [Array(Self.run.located.prefix(5)), Array(Self.run.located.dropFirst(5))]
        var samples: UInt64 = 0
        for half in halves {
            let output = try runner.run(try Self.task(.eep, chunks: half), chunks: &chunks, conditionals: &broker)
            samples += try #require(Self.result(output)).sampleCount
        }
        #expect(samples == 95 && broker.conditionalFetches == 1)
    }

    @Test func aConditionalWithAMissingPartIsAnErrorNotARejection() throws {
        var (chunks, broker) = try Self.sources(cached: [])
        broker.conditionalRecords[RecordLocation(partition: 0, offset: 1)] = nil
        var runner = TaskRunner(maxMessageBytes: 1_000_000)
        #expect(throws: TaskError.self) { try runner.run(try Self.task(.eep), chunks: &chunks, conditionals: &broker) }
    }
}
