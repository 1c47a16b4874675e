import LEEPCore

/// Kind 4: work the aggregator hands to any worker — recompute pass 1 over chunks whose partial
/// was lost or dropped (a repair), run pass 2 over chunks with the run's final conditional, or
/// one of SFDA's passes 2 and 3 with its fits.
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
        /// SFDA's pass 2: each row mixed by the first fit (ConfMix), published as a task result
        /// carrying the mixed rows' statistics. The shared table is the first fit.
        case sfdaMix = 4
        /// SFDA's pass 3: Σ of the second fit's probability of each mixed row's own class,
        /// published as a task result. The shared tables are the first fit, then the second.
        case sfdaScore = 5

        /// True for every pass that reads tables the aggregator shares on the conditionals topic
        /// (all but a repair).
        public var readsSharedTables: Bool { self != .repair }
    }

    /// The run id.
    public let run: String
    /// Deterministic for (run, pass, chunks): a task issued twice is done twice, counted once.
    public let taskID: UInt64
    /// What to compute.
    public let pass: Pass
    /// Where the parts of the tables the pass reads are (`Pass.readsSharedTables`), in part
    /// order: the run's conditional, or SFDA's fits one after the other.
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
        if pass.readsSharedTables && conditional.isEmpty {
            throw .invalidValue(
                field: "conditional_parts", reason: "a task of pass \(pass.rawValue) needs the tables it reads (the conditional or SFDA's fits)")
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

/// Kind 6: a worker's sums for one task of pass 2 or of SFDA's passes. Version 1 carries the
/// sums; version 2, written only for an SFDA mixing task, adds one part of the mixed rows'
/// statistics (`WithinClassScatter`; a result then travels in parts, each repeating the sums,
/// like a partial).
public struct TaskResultFrame: Sendable, Equatable {
    /// The run id.
    public let run: String
    /// The task done.
    public let taskID: UInt64
    /// Rows summed.
    public let sampleCount: UInt64
    /// The sum the task's pass asks for: Σ log EEP_i (pass 2), or Σ of the second SFDA fit's
    /// probability of each row's own class (`sfdaScore`); 0 for `sfdaMix`.
    public let logEEPSum: Double
    /// Rows the expected empirical predictor got right.
    public let hits: UInt64
    /// One part of the statistics of an `sfdaMix` task's mixed rows (version 2); nil otherwise.
    public let statistics: StatisticsPart?

    /// A part of the flat statistics (`WithinClassScatter.flattened`) of a task's mixed rows.
    public struct StatisticsPart: Sendable, Equatable {
        /// Y of the statistics.
        public let targetClasses: Int
        /// D.
        public let featureWidth: Int
        /// This part: its index and count among the result's parts, and its range of values.
        public let part: MatrixPart
        /// The part's values.
        public let values: [Double]

        /// Creates a part.
        public init(targetClasses: Int, featureWidth: Int, part: MatrixPart, values: [Double]) {
            precondition(values.count == part.cellCount)
            (self.targetClasses, self.featureWidth, self.part, self.values) = (targetClasses, featureWidth, part, values)
        }
    }

    /// Creates a result.
    public init(
        run: String, taskID: UInt64, sampleCount: UInt64, logEEPSum: Double, hits: UInt64, statistics: StatisticsPart? = nil
    ) {
        self.run = run
        self.taskID = taskID
        self.sampleCount = sampleCount
        self.logEEPSum = logEEPSum
        self.hits = hits
        self.statistics = statistics
    }

    /// An `sfdaMix` task's result (its rows' `WithinClassScatter.flattened`) as parts, each
    /// within `messageLimit` bytes.
    public static func parts(
        run: String, taskID: UInt64, sampleCount: UInt64, statistics values: [Double], targetClasses: Int, featureWidth: Int,
        messageLimit: Int
    ) -> [TaskResultFrame] {
        MatrixPart.split(
            cells: values.count, bytesPerCell: 8, maxPayloadBytes: max(8, messageLimit - PartialFrame.headroomBytes)
        ).map { part in
            TaskResultFrame(
                run: run, taskID: taskID, sampleCount: sampleCount, logEEPSum: 0, hits: 0,
                statistics: StatisticsPart(
                    targetClasses: targetClasses, featureWidth: featureWidth, part: part,
                    values: Array(values[part.cellStart..<(part.cellStart + part.cellCount)])))
        }
    }

    /// The bytes on the wire: version 2 with statistics, version 1 (as older builds) without.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(
            kind: .taskResult, version: statistics == nil ? 1 : 2, capacity: 80 + run.utf8.count + 8 * (statistics?.values.count ?? 0))
        writer.write(run)
        writer.write(taskID)
        writer.write(sampleCount)
        writer.write(logEEPSum)
        writer.write(hits)
        if let statistics {
            writer.write(UInt32(statistics.targetClasses))
            writer.write(UInt32(statistics.featureWidth))
            statistics.part.write(to: &writer)
            writer.alignTo8()
            for value in statistics.values { writer.write(value) }
        }
        return writer.bytes
    }

    init(reading reader: inout ByteReader, version: UInt8) throws(FrameError) {
        run = try reader.readRunID()
        taskID = try reader.read(UInt64.self, "task_id")
        sampleCount = try reader.readCount64("sample_count")
        logEEPSum = try reader.readDouble("log_eep_sum")
        hits = try reader.readCount64("hits")
        guard version >= 2 else {
            statistics = nil
            return
        }
        let targetClasses = try reader.readClassCount("target_classes")
        let featureWidth = try reader.readFeatureWidth(targetClasses: targetClasses, required: true)
        let part = try MatrixPart(reading: &reader)
        try part.check(
            totalCells: WithinClassScatter.flattenedCount(targetClasses: targetClasses, featureWidth: featureWidth),
            whole: "\(StatisticKind.withinClassScatter)")
        try reader.skipPadding()
        guard reader.remaining == part.cellCount * 8 else {
            throw .invalidValue(field: "values", reason: "\(part.cellCount) values need \(part.cellCount * 8) bytes, \(reader.remaining) left")
        }
        statistics = StatisticsPart(
            targetClasses: targetClasses, featureWidth: featureWidth, part: part,
            values: try reader.readDoubles(count: part.cellCount, "values"))
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
        /// Tasks of one of SFDA's passes were issued as these tasks.
        case tasksIssued(pass: TaskFrame.Pass, taskIDs: [UInt64])
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
        case .tasksIssued(let pass, let taskIDs):
            writer.write(UInt8(4))
            writer.write(pass.rawValue)
            writer.write(UInt32(taskIDs.count))
            for id in taskIDs { writer.write(id) }
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
        case 4:
            let code = try reader.read(UInt8.self, "pass")
            guard let pass = TaskFrame.Pass(rawValue: code), pass == .sfdaMix || pass == .sfdaScore else {
                throw .invalidValue(field: "pass", reason: "no marker records tasks of pass \(code)")
            }
            let count = try reader.readCount("task_count", elementSize: 8)
            marker = .tasksIssued(pass: pass, taskIDs: try reader.readArray(UInt64.self, count: count, "task_ids"))
        case let other:
            throw .invalidValue(field: "marker", reason: "unknown marker \(other)")
        }
    }
}
