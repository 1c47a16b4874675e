/// What the aggregator counts, as its machines report it: a `RunStateMachine` counts what a
/// run's live records did, a `PartitionStateMachine` what a partition's records did.
enum AggregatorMetric: Hashable {
    /// A record of a live partition was consumed.
    case recordConsumed
    /// A partial was accepted.
    case partialAccepted
    /// A partial overlapping chunks already accepted was dropped.
    case duplicateDropped
    /// A record was dead-lettered.
    case deadLettered
    /// A run closed: its per-run series go.
    case forget(run: String, model: String, dataset: String)
}
