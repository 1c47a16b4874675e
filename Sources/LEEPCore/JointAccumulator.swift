import RealModule

/// Pass 1 of LEEP: the Y×Z joint sums Σ_{i: y_i = y} θ_iz, the sample count n and the NCE
/// count matrix of (y_i, ẑ_i), built chunk by chunk.
///
/// Every field is a sum over samples, so accumulators of disjoint parts of the data merge by
/// addition in any order, on any machine (docs/leep.md): `merge` is associative and commutative up
/// to floating-point reordering of the joint sums. The joint is kept unnormalised (the 1/n of
/// P(y, z) cancels in P(y|z)), which keeps merging a plain addition.
public struct JointAccumulator: Sendable, Equatable {
    /// Y, the number of target classes.
    public let targetClasses: Int
    /// Z, the number of source classes.
    public let sourceClasses: Int
    /// n, the number of samples added so far.
    public var sampleCount: Int { samples }
    /// n·P(y, z) = Σ_{i: y_i = y} θ_iz, row-major by target class y (Y×Z).
    public var jointSums: [Double] { sums }
    /// c(y, z) = #{i : y_i = y, argmax θ_i = z}, row-major by y (Y×Z); NCE's counts.
    public var argmaxCounts: [Int64] { counts }

    // Stored under other names so that the inlinable `add` may write them while users only read.
    @usableFromInline var samples: Int
    @usableFromInline var sums: [Double]
    @usableFromInline var counts: [Int64]

    /// An empty accumulator for Y target and Z source classes.
    public init(targetClasses: Int, sourceClasses: Int) {
        precondition(targetClasses > 0 && sourceClasses > 0, "Y and Z must be positive")
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.samples = 0
        self.sums = Array(repeating: 0, count: targetClasses * sourceClasses)
        self.counts = Array(repeating: 0, count: targetClasses * sourceClasses)
    }

    /// Rebuilds an accumulator from its sums (a partial received from another process).
    public init(
        targetClasses: Int, sourceClasses: Int, sampleCount: Int,
        jointSums: [Double], argmaxCounts: [Int64]
    ) throws(ShapeMismatch) {
        let cells = targetClasses * sourceClasses
        guard jointSums.count == cells, argmaxCounts.count == cells else {
            throw ShapeMismatch(
                expected: (targetClasses, sourceClasses),
                actual: (jointSums.count / max(sourceClasses, 1), argmaxCounts.count / max(sourceClasses, 1)))
        }
        self.targetClasses = targetClasses
        self.sourceClasses = sourceClasses
        self.samples = sampleCount
        self.sums = jointSums
        self.counts = argmaxCounts
    }

    /// Adds every row of `chunk`, or none of them.
    ///
    /// The chunk is validated first (values finite and non-negative, rows summing to 1 within
    /// `check.sumTolerance`, labels in [0, Y)); the first invalid row is thrown and the
    /// accumulator is left unchanged, so one bad chunk never taints the others.
    @inlinable
    public mutating func add<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, check: RowCheck = RowCheck()
    ) throws(AddError) {
        try requireSourceClasses(of: chunk)
        // The rows are added only once all of them passed, so a refused chunk leaves the
        // accumulator unchanged; the second read of the chunk comes from the cache.
        do throws(InvalidRow) {
            try check.validate(chunk, targetClasses: targetClasses)
        } catch {
            throw .row(error)
        }
        accumulate(chunk)
    }

    /// Throws unless `chunk` has this accumulator's Z.
    @inlinable
    func requireSourceClasses<Scalar: ProbabilityScalar>(of chunk: PredictionChunk<Scalar>) throws(AddError) {
        guard chunk.sourceClasses == sourceClasses else {
            throw .shape(ShapeMismatch(
                expected: (targetClasses, sourceClasses), actual: (targetClasses, chunk.sourceClasses)))
        }
    }

    /// n·P(y_i, ·) += θ_i and c(y_i, ẑ_i) += 1 for every row of a validated chunk.
    @inlinable
    mutating func accumulate<Scalar: ProbabilityScalar>(_ chunk: PredictionChunk<Scalar>) {
        let added = addRows(chunk, order: nil, tolerance: .infinity)
        precondition(added == chunk.rowCount, "a validated row was refused")
        samples += chunk.rowCount
    }

    /// `Scalar.addRows` on this accumulator's sums and counts; the rows added before the first refused.
    @inlinable
    mutating func addRows<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, order: UnsafePointer<Int32>?, tolerance: Double
    ) -> Int {
        let z = sourceClasses
        return sums.withUnsafeMutableBufferPointer { joint in
            counts.withUnsafeMutableBufferPointer { argmaxCounts in
                Scalar.addRows(
                    chunk.probabilities.baseAddress!, rowCount: chunk.rowCount, count: z,
                    labels: chunk.labels.baseAddress!, order: order, tolerance: tolerance,
                    joint: joint.baseAddress!, counts: argmaxCounts.baseAddress!)
            }
        }
    }

    /// Adds every row of `chunk`, each validated just before it is added, while it is still in
    /// the core's first-level cache: one read of the data where `add` makes two.
    ///
    /// On a refusal it throws the chunk's first invalid row, as `add` does, but leaves the
    /// accumulator holding part of the chunk: for callers that throw the accumulator away on a
    /// refusal, as `leep score` does (an invalid row fails the command).
    ///
    /// When the joint is larger than a core's cache (Y·Z doubles over `groupingThreshold`
    /// bytes: ImageNet-21k's 21,843 classes), the rows are added label by label, in row order
    /// within each label: every joint cell receives its terms in the same order as row by row,
    /// so the sums are bit for bit `add`'s, and each joint row is fetched from memory once per
    /// chunk and label rather than once per sample (at Z = 21,843 a joint row is twice the size
    /// of the sample added to it).
    @inlinable
    public mutating func addDiscardingOnRefusal<Scalar: ProbabilityScalar>(
        _ chunk: PredictionChunk<Scalar>, check: RowCheck = RowCheck()
    ) throws(AddError) {
        try requireSourceClasses(of: chunk)
        let (y, z, rowCount) = (targetClasses, sourceClasses, chunk.rowCount)
        var refused = chunk.labels.contains { $0 < 0 || Int($0) >= y }
        if !refused {
            let grouped = Self.addsByLabel(targetClasses: y, sourceClasses: z)
            refused = withUnsafeTemporaryAllocation(of: Int32.self, capacity: grouped ? rowCount : 0) { order in
                if grouped { Self.orderByLabel(chunk.labels, targetClasses: y, into: order) }
                // Each row is added as it is checked: a refusal discards the accumulator.
                return addRows(chunk, order: grouped ? UnsafePointer(order.baseAddress) : nil, tolerance: check.sumTolerance)
                    < rowCount
            }
        }
        guard refused else {
            samples += rowCount
            return
        }
        // The error path only: find the first invalid row in row order, as `add` reports it.
        do throws(InvalidRow) {
            try check.validate(chunk, targetClasses: y)
        } catch {
            throw .row(error)
        }
        preconditionFailure("a row was refused that validation accepts")
    }

    /// Above this many bytes of joint, `addDiscardingOnRefusal` adds rows label by label: about
    /// a second-level cache.
    @usableFromInline static let groupingThreshold = 1 << 20

    /// Whether a Y × Z table (the joint, or pass 2's conditional) is large enough that its rows
    /// are taken label by label: over `groupingThreshold` bytes of doubles, and more than one label.
    @inlinable
    public static func addsByLabel(targetClasses: Int, sourceClasses: Int) -> Bool {
        targetClasses > 1 && targetClasses * sourceClasses * MemoryLayout<Double>.size > groupingThreshold
    }

    /// The chunk's row indices ordered by label, stably (a counting sort: O(rows + Y)).
    @inlinable
    static func orderByLabel(
        _ labels: UnsafeBufferPointer<Int32>, targetClasses: Int, into order: UnsafeMutableBufferPointer<Int32>
    ) {
        withUnsafeTemporaryAllocation(of: Int.self, capacity: targetClasses + 1) { next in
            next.initialize(repeating: 0)
            for label in labels { next[Int(label) + 1] += 1 }
            for label in 0..<targetClasses { next[label + 1] += next[label] }
            for (i, label) in labels.enumerated() {
                order[next[Int(label)]] = Int32(truncatingIfNeeded: i)
                next[Int(label)] += 1
            }
        }
    }

    /// Adds the sums of `other`, which covers other samples of the same run.
    public mutating func merge(_ other: JointAccumulator) throws(ShapeMismatch) {
        guard other.targetClasses == targetClasses, other.sourceClasses == sourceClasses else {
            throw ShapeMismatch(
                expected: (targetClasses, sourceClasses),
                actual: (other.targetClasses, other.sourceClasses))
        }
        for index in sums.indices {
            sums[index] += other.sums[index]
            counts[index] += other.counts[index]
        }
        samples += other.samples
    }

    /// The same sums for a larger Y: target classes beyond the current ones have no samples.
    ///
    /// Shards of one run may each know only their own largest label; their sums combine once
    /// widened to the larger Y (the joint is row-major by y, so widening appends zero rows).
    public func widened(toTargetClasses newTargetClasses: Int) -> JointAccumulator {
        precondition(newTargetClasses >= targetClasses, "cannot narrow \(targetClasses) target classes to \(newTargetClasses)")
        guard newTargetClasses > targetClasses else { return self }
        var copy = self
        let extra = (newTargetClasses - targetClasses) * sourceClasses
        copy.sums += repeatElement(0, count: extra)
        copy.counts += repeatElement(0, count: extra)
        return JointAccumulator(copy, targetClasses: newTargetClasses)
    }

    private init(_ other: JointAccumulator, targetClasses: Int) {
        self.targetClasses = targetClasses
        self.sourceClasses = other.sourceClasses
        self.samples = other.samples
        self.sums = other.sums
        self.counts = other.counts
    }

    /// NCE = −H(Y | Ẑ) = Σ_{y,z} P(y, ẑ=z) log P(y | ẑ=z), from the count matrix (Tran et al. 2019).
    public var negativeConditionalEntropy: Double {
        guard sampleCount > 0 else { return 0 }
        let n = Double(sampleCount)
        // Row-major reads only: at Y × Z = 200 × 21,843 a column walk misses the cache every cell.
        var columnCounts = [Int64](repeating: 0, count: sourceClasses)
        for y in 0..<targetClasses {
            for z in 0..<sourceClasses { columnCounts[z] += counts[y * sourceClasses + z] }
        }
        var entropy = 0.0
        for y in 0..<targetClasses {
            for z in 0..<sourceClasses {
                let count = counts[y * sourceClasses + z]
                guard count > 0 else { continue }
                entropy += Double(count) / n * Double.log(Double(count) / Double(columnCounts[z]))
            }
        }
        return entropy
    }
}

/// Why `JointAccumulator.add` refused a chunk.
public enum AddError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A row (or its label) is invalid.
    case row(InvalidRow)
    /// The chunk's number of source classes differs from the accumulator's.
    case shape(ShapeMismatch)

    public var description: String {
        switch self {
        case .row(let error): return error.description
        case .shape(let error): return error.description
        }
    }
}
