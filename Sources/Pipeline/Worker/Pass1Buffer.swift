import LEEPCore
import WireFormat

/// Pass 1 on a worker: the partial sums of every run whose chunks arrived since the last flush,
/// and the policy that says when to flush them.
///
/// Pure: chunks come in decoded, the time comes in as `now`, and a flush goes out as the
/// partial frames of all its runs at once. The worker publishes those frames and only then
/// commits the offsets of the chunks they cover (docs/architecture.md, "Exactly once").
struct Pass1Buffer {
    /// When pending sums are flushed.
    struct Policy: Sendable {
        /// How long sums may wait, from the first chunk added after a flush.
        var interval: Duration
        /// Flush once this many chunk record bytes are pending.
        var maxPendingBytes: Int
        /// Flush once one partial covers this many chunks: every part of a partial lists its
        /// chunks (16 bytes each), which must leave room for the sums within a message.
        var maxChunksPerPartial: Int
        /// The broker's message limit: partials are split into frames under it.
        var maxMessageBytes: Int
        /// The share of each chunk's rows sent verbatim (`RowSampleFrame`) for the aggregator's
        /// estimate while pass 1 streams; 0 sends none.
        var rowSampleRate: Double = 0
    }

    /// What became of a chunk given to `add`.
    enum Outcome: Equatable {
        /// Its rows are in the pending sums.
        case added
        /// It already was: the same record consumed twice before a flush (a producer retry).
        case duplicate
        /// It cannot be scored, for this reason: its run fails, and the run's pending sums of
        /// this shape are dropped (they may hold some of the chunk's rows).
        case rejected(String)
    }

    /// A run's sums are kept apart per shape: a chunk whose Y differs (a shard that saw fewer
    /// labels) makes a partial of its own, which the aggregator widens; one whose Z or feature
    /// width D differs makes one too, and the aggregator, which knows the run's Z and D from its
    /// manifest, fails the run blaming the right chunk (a worker cannot tell which chunk of two
    /// is the stray).
    private struct Key: Hashable {
        let run: String
        let targetClasses: Int
        let sourceClasses: Int
        let featureWidth: Int
    }

    let policy: Policy
    let check: RowCheck
    private var pending: [Key: PendingPartial] = [:]
    /// The pending chunks' sampled rows, sent with their sums.
    private var samples: [RowSampleFrame] = []
    /// Chunk record bytes in the pending sums, plus the memory of their feature statistics.
    private(set) var pendingBytes = 0
    /// The memory of the pending feature statistics alone (part of `pendingBytes`).
    private(set) var statisticsBytes = 0
    private var largestPartial = 0
    /// When the first chunk after the last flush was added.
    private var oldestPending: ContinuousClock.Instant?

    init(policy: Policy, check: RowCheck = RowCheck()) {
        self.policy = policy
        self.check = check
    }

    /// True when no sums wait to be flushed.
    var isEmpty: Bool { pending.isEmpty }

    /// Adds `chunk`, a record of `bytes` bytes, to its run's pending sums at time `now`.
    mutating func add(_ chunk: ChunkFrame, bytes: Int, now: ContinuousClock.Instant) -> Outcome {
        let featureWidth = chunk.features?.width ?? 0
        let key = Key(
            run: chunk.run.id, targetClasses: chunk.targetClasses, sourceClasses: chunk.sourceClasses,
            featureWidth: featureWidth)
        // Taken out of the dictionary while it is added to, so its arrays are not shared (a
        // shared array would be copied, Y×Z cells, by the first write).
        var partial = pending.removeValue(forKey: key)
            ?? PendingPartial(
                run: chunk.run, targetClasses: chunk.targetClasses, sourceClasses: chunk.sourceClasses,
                featureWidth: featureWidth)
        guard !partial.covers(chunk.id) else {
            pending[key] = partial
            return .duplicate
        }
        do {
            try partial.addDiscardingOnRefusal(chunk, check: check)
        } catch {
            // The run fails on this rejection; its other sums here would count for nothing.
            if !partial.chunks.isEmpty {
                let statistics = partial.features?.byteCount ?? 0
                pendingBytes -= partial.recordBytes + statistics
                statisticsBytes -= statistics
            }
            if pending.isEmpty && samples.isEmpty { (oldestPending, largestPartial) = (nil, 0) }
            return .rejected("\(chunk.id): \(error)")
        }
        // A run's first chunk with features brings its statistics into memory (D² values, and
        // Y·D² for the per-class scatters): they count toward the flush threshold like chunk
        // bytes, so that many runs with wide features cannot pile up between flushes.
        if partial.chunks.isEmpty, let features = partial.features {
            pendingBytes += features.byteCount
            statisticsBytes += features.byteCount
        }
        partial.record(chunk.id)
        partial.recordBytes += bytes
        pendingBytes += bytes
        if var sampler = RowSampler(frame: chunk, rate: policy.rowSampleRate) {
            try? chunk.visit(&sampler)  // the rows were just accepted: reading them cannot fail
            if let sample = sampler.sample {
                samples.append(sample)
                pendingBytes += sample.probabilities.count * 8
            }
        }
        largestPartial = max(largestPartial, partial.chunks.count)
        pending[key] = partial
        if oldestPending == nil { oldestPending = now }
        return .added
    }

    /// Whether the pending sums should be flushed now: the stream paused (`idle`: a poll came
    /// back empty, often because the producer is done and the aggregator waits for these sums),
    /// they waited the interval, or they reached a size limit.
    ///
    /// The interval alone does not flush feature statistics larger than the chunk bytes they
    /// cover — a partial of wide features (Y·D² values: 185 MB at D = 2,048, Y = 10) flushed
    /// every second would send the broker far more than the chunks it read — until they have
    /// waited `Self.statisticsPatience` intervals; the size limit, a pause of the stream and the
    /// chunk count flush them as before. Without features this is the interval rule unchanged.
    func isDue(now: ContinuousClock.Instant, idle: Bool) -> Bool {
        guard let oldestPending else { return false }
        let waited = now - oldestPending
        let chunkBytes = pendingBytes - statisticsBytes
        let intervalDue = waited >= policy.interval
            && (chunkBytes >= statisticsBytes || waited >= policy.interval * Self.statisticsPatience)
        return idle || intervalDue || pendingBytes >= policy.maxPendingBytes || largestPartial >= policy.maxChunksPerPartial
    }

    /// How many intervals statistics larger than their chunks may wait for a flush.
    static let statisticsPatience = 60

    /// Empties the buffer; returns the partial frames of every run in it (each partial split
    /// under the message limit), the chunks' sampled rows, and how many partials they make.
    mutating func flush() -> (frames: [PartialFrame], samples: [RowSampleFrame], partials: Int) {
        let flushed = pending.values
        let sampled = samples
        pending = [:]
        samples = []
        pendingBytes = 0
        statisticsBytes = 0
        largestPartial = 0
        oldestPending = nil
        return (flushed.flatMap { partial in
            var partial = partial
            return partial.frames(maxMessageBytes: policy.maxMessageBytes)
        }, sampled, flushed.count)
    }
}
