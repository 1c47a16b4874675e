import Foundation
import LEEPCore
import Kafka
import Logging

/// `leep aggregate`: a member of the aggregators' consumer group. It owns the runs whose
/// records land in its partitions of the runs topic and drives each through its
/// `RunStateMachine`, each partition through its `PartitionStateMachine`: a thin loop that feeds
/// them events (a round, the barrier written, records, ticks) and carries out the actions they
/// return, all of a round's in one delivery (`OutboxDelivery`), then commits.
///
/// Its state is bounded by the open runs: a closed run leaves only its id, and the group's
/// committed offset of each partition is the first record of its oldest open run, so a new owner
/// replays no more than the open runs need. The ids of closed runs live on the compacted closed
/// topic, which a new owner reads first, so late records of long-closed runs change nothing.
///
/// Every decision depends only on the run's records, and each is recorded on the runs topic, so
/// an aggregator that takes over — after a crash, a freeze or a rebalance — decides the same;
/// anything published twice is harmless (tasks count once per id, scores are keyed by pair).
public final class Aggregator: Sendable {
    /// Tuning knobs.
    public struct Options: Sendable {
        /// Issue repair tasks for chunks the workers have passed that are still missing after
        /// this long without progress; issue pass-2 tasks again after this long without a result.
        public var repairAfter: Duration = .seconds(10)
        /// Repair every missing chunk, passed by the workers or not, after this long without
        /// progress.
        public var repairAnywayAfter: Duration = .seconds(60)
        /// The workers' consumer group, whose committed offsets say which chunks they have
        /// passed (nil: the topic prefix + "workers", as `leep worker` defaults to).
        public var workersGroup: String?
        /// Chunks per task.
        public var chunksPerTask = 32
        /// The broker's message limit: conditionals are split to stay under it.
        public var maxMessageBytes = 1_000_000
        /// Minimum time between two progress records of one run.
        public var progressInterval: Duration = .seconds(1)
        /// Publish `incomplete` for a run whose manifests are not all in and that has had no
        /// record for this long.
        public var incompleteAfter: Duration = .seconds(60)
        /// Close a run as failed ("abandoned") after this long without a record, so a run that
        /// never finishes does not stay open, and pin the runs topic's history, forever. Keep it
        /// shorter than the retention of the runs and chunks topics.
        public var abandonAfter: Duration = .seconds(86_400)
        /// Rows of a run merged before its streaming records carry an estimate of its LEEP: the
        /// interval is a large-sample one (`LEEPEstimate`).
        public var estimateAfterRows = LEEPEstimate.defaultMinimumRowsMerged
        /// Records handled per round at most before the round's actions are carried out.
        public var recordsPerRound = 2_000
        /// Threads for the runs' long computations (the feature metrics' decompositions, SFDA's
        /// fits), which run off the loop: by default all cores but the loop's.
        public var computationThreads = max(1, ProcessInfo.processInfo.activeProcessorCount - 1)

        /// Defaults.
        public init() {}

        var policy: RunStateMachine.Policy {
            RunStateMachine.Policy(
                repairAfter: repairAfter, repairAnywayAfter: max(repairAnywayAfter, repairAfter), incompleteAfter: incompleteAfter, abandonAfter: abandonAfter,
                progressInterval: progressInterval, chunksPerTask: chunksPerTask, estimateAfterRows: estimateAfterRows)
        }
    }

    private let loop: AggregatorLoop
    private let consumer: KafkaConsumer
    /// What `/health` reports; the aggregator marks its rounds and its problems there.
    private let health: RoleHealth

    /// Joins `group` and subscribes to the runs topic.
    public init(
        configuration: KafkaConfiguration, group: String, topics: Topics, options: Options = Options(),
        clock: any WallClock = SystemWallClock(), health: RoleHealth, logger: Logger
    ) throws(KafkaError) {
        let loop = try AggregatorLoop(
            configuration: configuration, topics: topics, options: options, clock: clock,
            delivery: PersistentDelivery(health: health, logger: logger), logger: logger)
        self.health = health
        self.loop = loop
        consumer = try KafkaConsumer(
            configuration: configuration.merging(["group.id": group]), topics: [topics.runs]
        ) { rebalance, _ in
            // Offsets are committed by the loop at the end of every round, after the round's
            // actions are delivered; a revocation only drops the partitions' state.
            switch rebalance {
            case .assigned(let partitions): loop.assigned(partitions.map(\.partition))
            case .revoked(let partitions): loop.revoked(partitions.map(\.partition))
            }
        }
    }

    /// Processes records until `shutdown` is triggered. Throws when a Kafka client failed
    /// fatally: the aggregator is then to be replaced (`RoleSupervisor`), and its successor
    /// takes over from the committed offsets like any new owner.
    public func run(until shutdown: ShutdownSignal) throws {
        var upkeep = LoopUpkeep(health: health, topicPrefix: loop.topics.prefix, lagFrom: .committed, logger: loop.logger)
        while !shutdown.isTriggered {
            upkeep.round(consumer)
            try loop.round(consumer)
        }
        consumer.close()
        loop.logger.info("aggregator stopped")
    }
}
