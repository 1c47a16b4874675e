import Kafka
import Metrics

// What the roles report, through the swift-metrics API only: the process chooses the backend
// (`leep worker --metrics-port` bootstraps Prometheus; without it the calls go nowhere). The
// names are the contract of ops/grafana and ops/prometheus; docs/operations.md lists them.

/// The counters and gauges of one `leep worker`.
struct WorkerMetrics: Sendable {
    let chunksConsumed = Counter(label: "leep_worker_records_consumed_total", dimensions: [("topic", "chunks")])
    let tasksConsumed = Counter(label: "leep_worker_records_consumed_total", dimensions: [("topic", "tasks")])
    let chunkBytes = Counter(label: "leep_worker_bytes_consumed_total", dimensions: [("topic", "chunks")])
    let taskBytes = Counter(label: "leep_worker_bytes_consumed_total", dimensions: [("topic", "tasks")])
    let partialsFlushed = Counter(label: "leep_worker_partials_flushed_total")
    let deadLetters = Counter(label: "leep_worker_dead_letters_total")
    let chunksRejected = Counter(label: "leep_worker_chunks_rejected_total")
    let cacheHits = Counter(label: "leep_worker_chunk_cache_hits_total")
    let cacheMisses = Counter(label: "leep_worker_chunk_cache_misses_total")
    let cacheBytes = Gauge(label: "leep_worker_chunk_cache_bytes")
    /// Tasks done, by what they computed; every series exists from the start, at 0.
    let tasksDone = counters("leep_worker_tasks_done_total", by: "pass", values: ["repair", "eep", "eep_accuracy"])

    /// A task of `pass` done.
    func taskDone(_ pass: String) {
        tasksDone[pass]?.increment()
    }
}

/// The counters and gauges of one `leep aggregate`.
struct AggregatorMetrics: Sendable {
    let recordsConsumed = Counter(label: "leep_aggregator_records_consumed_total")
    let partialsAccepted = Counter(label: "leep_aggregator_partials_accepted_total")
    let duplicatesDropped = Counter(label: "leep_aggregator_duplicates_dropped_total")
    let chunksRepaired = Counter(label: "leep_aggregator_chunks_repaired_total")
    let pass2TasksIssued = Counter(label: "leep_aggregator_pass2_tasks_issued_total")
    let deadLetters = Counter(label: "leep_aggregator_dead_letters_total")
    let runsOpen = Gauge(label: "leep_aggregator_runs_open")
    /// Runs' computations (decompositions of their feature statistics, SFDA's fits) queued or
    /// running off the loop.
    let computationsInFlight = Gauge(label: "leep_aggregator_computations_in_flight")
    /// Runs closed, by outcome; every series exists from the start, at 0.
    let runsClosed = counters("leep_aggregator_runs_closed_total", by: "status", values: ["final", "failed"])

    /// A run closed with `status` (final or failed).
    func runClosed(_ status: String) {
        runsClosed[status]?.increment()
    }

    /// A running run's progress: chunks accepted of expected (0 until every manifest is in),
    /// and its pass.
    func progress(run: String, model: String, dataset: String, accepted: Int, expected: Int?, pass: Int) {
        let dimensions = [("run", run), ("model", model), ("dataset", dataset)]
        Gauge(label: "leep_run_chunks_accepted", dimensions: dimensions).record(accepted)
        Gauge(label: "leep_run_chunks_expected", dimensions: dimensions).record(expected ?? 0)
        Gauge(label: "leep_run_pass", dimensions: dimensions).record(pass)
    }

    /// Drops a closed run's progress gauges, so the series of finished runs do not pile up.
    func forget(run: String, model: String, dataset: String) {
        let dimensions = [("run", run), ("model", model), ("dataset", dataset)]
        for label in ["leep_run_chunks_accepted", "leep_run_chunks_expected", "leep_run_pass"] {
            Gauge(label: label, dimensions: dimensions).destroy()
        }
    }
}

/// `leep_consumer_lag{topic, partition}` and `leep_up{role}`: shared by both roles.
struct ConsumerMetrics: Sendable {
    let role: String
    /// Topic names are reported without the deployment's prefix, so dashboards work for any.
    let topicPrefix: String

    func up() {
        Gauge(label: "leep_up", dimensions: [("role", role)]).record(1)
    }

    func record(_ lags: [KafkaPartitionLag]) {
        for lag in lags {
            let topic = lag.partition.topic.hasPrefix(topicPrefix)
                ? String(lag.partition.topic.dropFirst(topicPrefix.count)) : lag.partition.topic
            Gauge(label: "leep_consumer_lag", dimensions: [("topic", topic), ("partition", "\(lag.partition.partition)")])
                .record(lag.records)
        }
    }
}

/// One counter per value of a label, all created (at 0) up front so every series is scraped
/// before its first event.
private func counters(_ label: String, by dimension: String, values: [String]) -> [String: Counter] {
    Dictionary(uniqueKeysWithValues: values.map { ($0, Counter(label: label, dimensions: [(dimension, $0)])) })
}
