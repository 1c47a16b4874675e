import LEEPCore
@testable import Pipeline
import Testing
import WireFormat

/// The worker's pass-1 chunk cache: bounded, oldest out first, each chunk served once.
@Suite struct ChunkCacheTests {
    /// A one-row chunk starting at `row`.
    static func chunk(_ row: Int) throws -> ChunkFrame {
        let theta: [Float] = [0.5, 0.5]
        let labels: [Int32] = [1]
        let bytes = theta.withUnsafeBufferPointer { theta in
            labels.withUnsafeBufferPointer { labels in
                ChunkFrame.encode(
                    run: RunIdentity(id: "r", model: "m", dataset: "d"), shard: 0, shardCount: 1, targetClasses: 2,
                    rows: PredictionChunk(probabilities: theta, labels: labels, sourceClasses: 2, firstRow: row))
            }
        }
        guard case .chunk(let frame) = try Frame.decode(bytes) else { throw FrameError.unknownKind(0) }
        return frame
    }

    static func location(_ offset: Int64) -> RecordLocation { RecordLocation(partition: 3, offset: offset) }

    @Test func servesEachChunkOnceAndEvictsTheOldest() throws {
        var cache = ChunkCache(capacityBytes: 300)
        for row in 0..<4 { cache.insert(try Self.chunk(row), at: Self.location(Int64(row)), bytes: 100) }
        #expect(cache.bytes == 300, "the oldest chunk made room")
        let first = try Self.chunk(0)
        #expect(cache.take(Self.location(0), id: first.id) == nil)
        let second = try Self.chunk(1)
        #expect(cache.take(Self.location(1), id: second.id)?.id == second.id)
        #expect(cache.take(Self.location(1), id: second.id) == nil, "taken once")
        #expect(cache.bytes == 200 && cache.hits == 1 && cache.misses == 2)
        // A record at the location that is not the chunk named is not served.
        let fourth = try Self.chunk(3)
        #expect(cache.take(Self.location(2), id: fourth.id) == nil)
    }

    @Test func disabledOrOversizedKeepsNothing() throws {
        var off = ChunkCache(capacityBytes: 0)
        off.insert(try Self.chunk(0), at: Self.location(0), bytes: 100)
        let id = try Self.chunk(0).id
        #expect(off.bytes == 0 && off.take(Self.location(0), id: id) == nil)
        var small = ChunkCache(capacityBytes: 50)
        small.insert(try Self.chunk(0), at: Self.location(0), bytes: 100)
        #expect(small.bytes == 0)
    }

    @Test func manyInsertsAndTakesStayBounded() throws {
        var cache = ChunkCache(capacityBytes: 1_000)
        let frame = try Self.chunk(0)
        for offset in 0..<10_000 {
            cache.insert(frame, at: Self.location(Int64(offset)), bytes: 10)
            if offset % 2 == 0 { _ = cache.take(Self.location(Int64(offset)), id: frame.id) }
        }
        #expect(cache.bytes <= 1_000)
    }
}
