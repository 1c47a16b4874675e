import ArgumentParser
import Pipeline

/// `leep worker`: computes pass-1 partials and does tasks until SIGINT/SIGTERM.
struct WorkerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Join the workers' consumer group: turn chunks into partial sums, do repair and pass-2 tasks.")

    @Option(help: "Consumer group of the workers (default: the topic prefix + \"workers\").") var group: String?
    @Option(help: "Seconds pass-1 sums may wait before they are published.") var flushInterval: Double = 1
    @Option(help: "The broker's message size limit in bytes.") var maxMessageBytes: Int = 1_000_000
    @Option(help: "MiB of chunks kept in memory from pass 1 for pass 2 (0: fetch them again from the broker).")
    var chunkCacheMb: Int = 512
    @Option(help: ArgumentHelp(
        "Share of each chunk's rows sent to the aggregator verbatim, for its estimate of LEEP while pass 1 streams (0: none).",
        valueName: "share"))
    var rowSampleRate: Double = 1.0 / 64
    @OptionGroup var kafka: KafkaOptions
    @OptionGroup var operations: OperationsOptions

    func validate() throws {
        guard (0...1).contains(rowSampleRate) else { throw ValidationError("--row-sample-rate must be in [0, 1], got \(rowSampleRate)") }
    }

    func run() async throws {
        var options = Worker.Options()
        options.rowSampleRate = rowSampleRate
        options.flushInterval = .milliseconds(Int(flushInterval * 1000))
        options.maxMessageBytes = maxMessageBytes
        options.chunkCacheBytes = max(0, chunkCacheMb) << 20
        // Deployments on one cluster are told apart by their topic prefix; so are their groups.
        let group = self.group ?? kafka.topicPrefix + "workers"
        let logger = kafka.logger(label: "leep.worker")
        let configuration = try kafka.configuration().merging(Self.clientDefaults(maxMessageBytes: maxMessageBytes), keepingExisting: true)
        let (topics, roleOptions) = (kafka.topics, options)
        try await operations.run(
            role: "worker", logger: logger,
            makeRole: { health in
                let worker = try Worker(
                    configuration: configuration, group: group, topics: topics, options: roleOptions, health: health, logger: logger)
                logger.info("worker started", metadata: ["group": "\(group)", "kafka": "\(configuration)"])
                return worker
            },
            loop: { worker, shutdown in try worker.run(until: shutdown) })
    }

    /// Client settings for long-running roles: fail over in seconds rather than 45 s, and
    /// accept messages up to the limit.
    static func clientDefaults(maxMessageBytes: Int) -> [String: String] {
        [
            "session.timeout.ms": "10000", "heartbeat.interval.ms": "1000",
            // A pass-2 task or a partial should not wait on a broker holding back a fetch.
            "fetch.wait.max.ms": "50",
            // A batch not acknowledged within 30 s fails (librdkafka's default waits 300 s) and
            // is sent again, or the clients are rebuilt if the producer failed for good: a
            // producer whose broker lost its state can otherwise wait out the whole default
            // with the poll loop blocked.
            "message.timeout.ms": "30000",
            "message.max.bytes": "\(max(maxMessageBytes, 1_000_000) + 100_000)",
            "fetch.max.bytes": "\(max(maxMessageBytes, 1_000_000) * 50)",
            "receive.message.max.bytes": "\(max(maxMessageBytes, 1_000_000) * 50 + 1_000_000)",
        ]
    }
}

