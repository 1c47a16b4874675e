/// Kind 4: work the aggregator hands to any worker — recompute pass 1 over chunks whose partial
/// was lost or dropped (a repair), or run pass 2 over chunks with the run's final conditional.
public struct TaskFrame: Sendable, Equatable {
    /// What the task computes.
    public enum Pass: UInt8, Sendable {
        /// Pass 1 over the chunks, published as a partial.
        case repair = 1
        /// Pass 2 over the chunks, published as a task result: Σ log EEP_i (one dot product a row).
        case eep = 2
        /// Pass 2 as `eep`, plus the hits of the expected empirical predictor (Y dot products a
        /// row), for runs whose producer asked for EEP accuracy.
        case eepWithAccuracy = 3

        /// Pass 2, with or without accuracy.
        public var isPass2: Bool { self != .repair }
    }

    /// The run id.
    public let run: String
    /// Deterministic for (run, pass, chunks): a task issued twice is done twice, counted once.
    public let taskID: UInt64
    /// What to compute.
    public let pass: Pass
    /// Where the parts of the run's conditional are (pass 2 only), in part order.
    public let conditional: [RecordLocation]
    /// The chunks to read and where they are.
    public let chunks: [LocatedChunk]

    /// Creates a task; its id is derived from the run, the pass and the chunks.
    public init(run: String, pass: Pass, conditional: [RecordLocation], chunks: [LocatedChunk]) {
        self.run = run
        self.pass = pass
        self.conditional = conditional
        self.chunks = chunks
        self.taskID = Self.id(run: run, pass: pass, chunks: chunks.map(\.id))
    }

    /// The id of a task of `pass` over `chunks` of `run`.
    public static func id(run: String, pass: Pass, chunks: [ChunkID]) -> UInt64 {
        var hasher = StableHasher()
        hasher.combine(run)
        hasher.combine(pass.rawValue)
        hasher.combine(chunkSet: chunks)
        return hasher.value
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .task, capacity: 64 + run.utf8.count + conditional.count * 12 + chunks.count * 28)
        writer.write(run)
        writer.write(taskID)
        writer.write(pass.rawValue)
        writer.write(UInt32(conditional.count))
        for location in conditional { writer.write(location) }
        writer.write(UInt32(chunks.count))
        for chunk in chunks {
            writer.write(chunk.id)
            writer.write(chunk.location)
        }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunID()
        taskID = try reader.read(UInt64.self, "task_id")
        let passByte = try reader.read(UInt8.self, "pass")
        guard let pass = Pass(rawValue: passByte) else { throw .invalidValue(field: "pass", reason: "unknown pass \(passByte)") }
        self.pass = pass
        let parts = try reader.readCount("conditional_parts", elementSize: 12)
        var conditional: [RecordLocation] = []
        for _ in 0..<parts { conditional.append(try reader.readLocation()) }
        self.conditional = conditional
        if pass.isPass2 && conditional.isEmpty {
            throw .invalidValue(field: "conditional_parts", reason: "a pass-2 task needs the conditional")
        }
        let count = try reader.readCount("chunk_count", elementSize: 28)
        var chunks: [LocatedChunk] = []
        for _ in 0..<count { chunks.append(LocatedChunk(id: try reader.readChunkID(), location: try reader.readLocation())) }
        self.chunks = chunks
        guard taskID == Self.id(run: run, pass: pass, chunks: chunks.map(\.id)) else {
            throw .invalidValue(field: "task_id", reason: "does not match the run, pass and chunks")
        }
    }
}

/// Kind 6: a worker's pass-2 sums for one task.
public struct TaskResultFrame: Sendable, Equatable {
    /// The run id.
    public let run: String
    /// The task done.
    public let taskID: UInt64
    /// Rows summed.
    public let sampleCount: UInt64
    /// Σ log EEP_i over those rows.
    public let logEEPSum: Double
    /// Rows the expected empirical predictor got right.
    public let hits: UInt64

    /// Creates a result.
    public init(run: String, taskID: UInt64, sampleCount: UInt64, logEEPSum: Double, hits: UInt64) {
        self.run = run
        self.taskID = taskID
        self.sampleCount = sampleCount
        self.logEEPSum = logEEPSum
        self.hits = hits
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .taskResult, capacity: 48 + run.utf8.count)
        writer.write(run)
        writer.write(taskID)
        writer.write(sampleCount)
        writer.write(logEEPSum)
        writer.write(hits)
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunID()
        taskID = try reader.read(UInt64.self, "task_id")
        sampleCount = try reader.readCount64("sample_count")
        logEEPSum = try reader.readDouble("log_eep_sum")
        hits = try reader.readCount64("hits")
    }
}

/// Kind 7: a worker could not score a well-formed chunk (a NaN, a negative value, a row off 1,
/// a label out of range, a class count that differs from its run's): the run must fail.
public struct ChunkRejectedFrame: Sendable, Equatable {
    /// The run and its pair, so a run can be reported failed before its manifest arrives.
    public let run: RunIdentity
    /// The chunk.
    public let chunk: ChunkID
    /// The problem, naming the row.
    public let reason: String

    /// Creates a rejection.
    public init(run: RunIdentity, chunk: ChunkID, reason: String) {
        self.run = run
        self.chunk = chunk
        // Strings on the wire are at most 65535 bytes; a reason never needs more than a line.
        self.reason = reason.utf8.count <= 4000 ? reason : String(decoding: reason.utf8.prefix(4000), as: UTF8.self)
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .chunkRejected, capacity: 64 + run.id.utf8.count + reason.utf8.count)
        writer.write(run)
        writer.write(chunk)
        writer.write(reason)
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunIdentity()
        chunk = try reader.readChunkID()
        reason = try reader.readString("reason")
    }
}

/// Kind 8: a decision the aggregator records on the runs topic, so that an aggregator that
/// replays the topic (after a crash or a rebalance) knows it was taken and does not redo it.
public struct RunMarkerFrame: Sendable, Equatable {
    /// The decision.
    public enum Marker: Sendable, Equatable {
        /// Pass 2 was issued as these tasks.
        case pass2Issued(taskIDs: [UInt64])
        /// The run's final or failed score was published; later records change nothing.
        case closed
        /// Repair tasks were issued for this many chunks (for the record: how much was redone).
        case repairIssued(chunks: UInt32)
    }

    /// The run id.
    public let run: String
    /// The decision.
    public let marker: Marker

    /// Creates a marker.
    public init(run: String, marker: Marker) {
        self.run = run
        self.marker = marker
    }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .runMarker, capacity: 32 + run.utf8.count)
        writer.write(run)
        switch marker {
        case .pass2Issued(let taskIDs):
            writer.write(UInt8(1))
            writer.write(UInt32(taskIDs.count))
            for id in taskIDs { writer.write(id) }
        case .closed:
            writer.write(UInt8(2))
        case .repairIssued(let chunks):
            writer.write(UInt8(3))
            writer.write(chunks)
        }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        run = try reader.readRunID()
        switch try reader.read(UInt8.self, "marker") {
        case 1:
            let count = try reader.readCount("task_count", elementSize: 8)
            marker = .pass2Issued(taskIDs: try reader.readArray(UInt64.self, count: count, "task_ids"))
        case 2:
            marker = .closed
        case 3:
            marker = .repairIssued(chunks: try reader.read(UInt32.self, "chunk_count"))
        case let other:
            throw .invalidValue(field: "marker", reason: "unknown marker \(other)")
        }
    }
}
