import LEEPCore
import WireFormat

/// Does the aggregator's tasks: a repair (pass 1 over exactly the task's chunks, as one
/// partial), pass 2 (Σ log EEP_i, and the predictor's hits if asked, with the run's final
/// conditional), or one of SFDA's passes (the mixed rows' statistics with the first fit; Σ of the
/// second fit's own-class probabilities). Pure apart from the sources it reads chunks and
/// shared tables from.
struct TaskRunner {
    /// What a task produced, to publish on the runs topic keyed by its run.
    enum Output {
        /// A repair's partial, split under the message limit (empty for a task of no chunks).
        case partial([PartialFrame])
        /// A pass-2 or SFDA result, in one part or (the statistics of an SFDA mixing task) several.
        case result([TaskResultFrame])
        /// The task cannot be done as issued, and a retry would read the same records: its run
        /// must fail.
        case rejection(ChunkRejectedFrame)
    }

    /// The acceptance rule for rows (repairs check them as pass 1 does).
    let check: RowCheck
    /// The broker's message limit, for a repair's partial.
    let maxMessageBytes: Int
    /// The conditionals of the runs in pass 2 here: a run's tasks share one.
    private var conditionals: [String: (locations: [RecordLocation], table: ConditionalTable)] = [:]

    init(check: RowCheck = RowCheck(), maxMessageBytes: Int) {
        self.check = check
        self.maxMessageBytes = maxMessageBytes
    }

    /// Does `task`, reading its chunks from `chunkSource` and, for pass 2, its conditional from
    /// `conditionalSource` (or from the one kept for its run). Throws when a source fails or
    /// the conditional is missing or inconsistent: the task is then left for a retry.
    mutating func run(
        _ task: TaskFrame, chunks chunkSource: inout some ChunkSource, conditionals conditionalSource: inout some ConditionalSource
    ) throws -> Output {
        var chunks: [ChunkFrame] = []
        for (located, lookup) in zip(task.chunks, try chunkSource.chunks(task.chunks)) {
            let place = "\(located.id) of run \(task.run) (partition \(located.location.partition) offset \(located.location.offset))"
            switch lookup {
            case .found(let chunk) where chunk.id == located.id && chunk.run.id == task.run:
                chunks.append(chunk)
            case .found:
                // A manifest pointing at a record that is not the chunk it names.
                return .rejection(rejection(of: task, located, reason: "the record where the manifest puts chunk \(place) is another chunk"))
            case .absent(let why):
                // Lost with a broker's data, deleted by retention, or never there: the run
                // cannot be scored, and saying so now beats asking again forever.
                return .rejection(rejection(of: task, located, reason: "chunk \(place) is missing: \(why)"))
            case .notHeld:
                throw TaskError("no source holds chunk \(place)")
            }
        }
        switch task.pass {
        case .repair:
            return repair(task, chunks: chunks)
        case .eep, .eepWithAccuracy:
            return eep(task, chunks: chunks, conditional: try conditional(for: task, from: &conditionalSource))
        case .sfdaMix, .sfdaScore:
            return try sfda(task, chunks: chunks, from: &conditionalSource)
        }
    }

    private func rejection(of task: TaskFrame, _ located: LocatedChunk, reason: String) -> ChunkRejectedFrame {
        ChunkRejectedFrame(run: RunIdentity(id: task.run, model: "", dataset: ""), chunk: located.id, reason: reason)
    }

    /// Pass 1 over exactly the task's chunks, as one partial.
    private func repair(_ task: TaskFrame, chunks: [ChunkFrame]) -> Output {
        guard let first = chunks.first else { return .partial([]) }
        var partial = PendingPartial(
            run: first.run, targetClasses: chunks.map(\.targetClasses).max()!, sourceClasses: first.sourceClasses,
            featureWidth: first.features?.width ?? 0)
        for chunk in chunks {
            do {
                try partial.addDiscardingOnRefusal(chunk, check: check)
            } catch {
                return .rejection(ChunkRejectedFrame(run: chunk.run, chunk: chunk.id, reason: "\(chunk.id): \(error)"))
            }
            partial.record(chunk.id)
        }
        return .partial(partial.frames(maxMessageBytes: maxMessageBytes))
    }

    /// Pass 2 over the task's chunks. A run of features alone has no pass 2: a chunk without
    /// softmax outputs in a pass-2 task fails its run rather than count no rows.
    private func eep(_ task: TaskFrame, chunks: [ChunkFrame], conditional: ConditionalTable) -> Output {
        var adder = EEPAdder(conditional: conditional, accuracy: task.pass == .eepWithAccuracy)
        for chunk in chunks {
            guard chunk.probabilities != nil else {
                return .rejection(ChunkRejectedFrame(
                    run: chunk.run, chunk: chunk.id,
                    reason: "\(chunk.id): the chunk carries features alone, no softmax outputs for pass 2"))
            }
            do {
                try chunk.visit(&adder)
            } catch {
                return .rejection(ChunkRejectedFrame(run: chunk.run, chunk: chunk.id, reason: "\(chunk.id): \(error)"))
            }
        }
        return .result([TaskResultFrame(
            run: task.run, taskID: task.taskID, sampleCount: UInt64(adder.eep.sampleCount),
            logEEPSum: adder.eep.logEEPSum, hits: UInt64(adder.eep.hits))])
    }

    /// SFDA's pass 2 (`sfdaMix`: the within-class scatter of the chunks' rows mixed by the first fit) or
    /// pass 3 (`sfdaScore`: Σ of the second fit's probability of each mixed row's own class).
    private func sfda(
        _ task: TaskFrame, chunks: [ChunkFrame], from source: inout some ConditionalSource
    ) throws -> Output {
        // A shard's own Y (its largest label + 1) may be below the run's: the fits name the
        // run's classes, so Y is at least theirs.
        let fits = try sfdaFits(of: task, from: &source)
        let targetClasses = max(chunks.map(\.targetClasses).max() ?? 1, (fits.first?.classes.last ?? 0) + 1)
        guard fits.count == (task.pass == .sfdaMix ? 1 : 2) else {
            throw TaskError("task \(task.taskID) of run \(task.run) names \(fits.count) SFDA fits")
        }
        let width = fits[0].featureWidth
        var mixed = WithinClassScatter(featureWidth: width, targetClasses: targetClasses)
        // The mixed rows' scatter is added a gathered block at a time (`FeatureRowGatherer`).
        var gathered = FeatureRowGatherer(featureWidth: width)
        func addMixed(_ rows: FeatureChunk) { SFDA.addMixedRows(of: rows, first: fits[0], to: &mixed) }
        var sum = 0.0
        for chunk in chunks {
            guard chunk.features?.width == width, chunk.labels.allSatisfy(fits[0].knows) else {
                return .rejection(ChunkRejectedFrame(
                    run: chunk.run, chunk: chunk.id,
                    reason: "\(chunk.id): its features or labels are not those of its run's first SFDA fit"))
            }
            try! chunk.withFeatureChunk { rows throws(FeatureAddError) in
                if task.pass == .sfdaMix {
                    gathered.append(rows, addMixed)
                } else {
                    sum += SFDA.ownClassProbabilitySum(of: rows, first: fits[0], second: fits[1])
                }
            }
        }
        gathered.drain(addMixed)
        let rows = UInt64(chunks.reduce(0) { $0 + $1.labels.count })
        guard task.pass == .sfdaMix else {
            return .result([TaskResultFrame(run: task.run, taskID: task.taskID, sampleCount: rows, logEEPSum: sum, hits: 0)])
        }
        return .result(TaskResultFrame.parts(
            run: task.run, taskID: task.taskID, sampleCount: rows, statistics: mixed.flattened, targetClasses: targetClasses,
            featureWidth: width, messageLimit: maxMessageBytes))
    }

    /// The SFDA fits a task names, in order: its conditional locations hold each fit's parts,
    /// one fit after the other (each part says how many its fit has).
    private func sfdaFits(of task: TaskFrame, from source: inout some ConditionalSource) throws -> [SFDA.Fit] {
        let parts = try source.conditionalParts(at: task.conditional)
        var fits: [SFDA.Fit] = []
        var index = 0
        while index < parts.count {
            guard case .found(let first) = parts[index], first.run == task.run, first.part.partIndex == 0,
                  index + Int(first.part.partCount) <= parts.count
            else { throw TaskError("the SFDA fit parts of run \(task.run) are missing, foreign or out of order") }
            var values = [Double](repeating: 0, count: first.targetClasses * first.sourceClasses)
            for offset in 0..<Int(first.part.partCount) {
                guard case .found(let part) = parts[index + offset], part.run == task.run,
                      part.part.partCount == first.part.partCount, part.part.partIndex == UInt32(offset),
                      (part.targetClasses, part.sourceClasses) == (first.targetClasses, first.sourceClasses)
                else { throw TaskError("the SFDA fit parts of run \(task.run) are inconsistent") }
                values.replaceSubrange(part.part.cellStart..<(part.part.cellStart + part.part.cellCount), with: part.values)
            }
            guard let fit = SFDA.Fit(matrix: values, rows: first.targetClasses, columns: first.sourceClasses) else {
                throw TaskError("the SFDA fit of run \(task.run) is not a fit")
            }
            fits.append(fit)
            index += Int(first.part.partCount)
        }
        return fits
    }

    /// True when the conditional `task` names is kept from an earlier task of its run.
    func holdsConditional(of task: TaskFrame) -> Bool { conditionals[task.run]?.locations == task.conditional }

    /// The task's conditional, assembled from its parts unless kept from an earlier task.
    private mutating func conditional(for task: TaskFrame, from source: inout some ConditionalSource) throws -> ConditionalTable {
        if let kept = conditionals[task.run], kept.locations == task.conditional { return kept.table }
        let parts = try source.conditionalParts(at: task.conditional)
        var values: [Double] = []
        var shape: (targetClasses: Int, sourceClasses: Int)?
        for lookup in parts {
            guard case .found(let part) = lookup, part.run == task.run, part.part.partCount == UInt32(parts.count),
                  shape.map({ $0 == (part.targetClasses, part.sourceClasses) }) ?? true
            else {
                throw TaskError("the conditional parts of run \(task.run) are missing, foreign or inconsistent")
            }
            if shape == nil {
                shape = (part.targetClasses, part.sourceClasses)
                values = Array(repeating: 0, count: part.targetClasses * part.sourceClasses)
            }
            values.replaceSubrange(part.part.cellStart..<(part.part.cellStart + part.part.cellCount), with: part.values)
        }
        guard let shape else { throw TaskError("task \(task.taskID) names no conditional") }
        let table = try ConditionalTable(
            targetClasses: shape.targetClasses, sourceClasses: shape.sourceClasses, probabilities: values)
        // A few runs at a time are in pass 2; keep their conditionals, not every run's.
        if conditionals.count >= 8 { conditionals.removeAll() }
        conditionals[task.run] = (task.conditional, table)
        return table
    }
}

/// A task that cannot be done as issued.
struct TaskError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
