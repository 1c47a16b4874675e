import ArgumentParser
import Foundation
import Kafka
import Logging
import Operations
import Pipeline
import Synchronization

/// Options every command that talks to Kafka takes.
struct KafkaOptions: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("Bootstrap brokers, host:port[,host:port] (env LEEP_BROKERS).", valueName: "list"))
    var brokers: String = ProcessInfo.processInfo.environment["LEEP_BROKERS"] ?? "127.0.0.1:9092"

    @Option(name: .long, help: ArgumentHelp("Prefix of the topic names.", valueName: "prefix"))
    var topicPrefix: String = "leep."

    @Option(
        name: .long,
        help: ArgumentHelp(
            "Any librdkafka property, e.g. security.protocol=SSL (repeatable; overrides --kafka-config-file).",
            valueName: "key=value"))
    var kafkaConfig: [String] = []

    @Option(name: .long, help: ArgumentHelp("A file of librdkafka properties, one key=value a line.", valueName: "path"))
    var kafkaConfigFile: String?

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(name: .long, help: "Log lines on standard error: logfmt or json, one entry a line.")
    var logFormat: LineLogHandler.Format = .logfmt

    var topics: Topics { Topics(prefix: topicPrefix) }

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel)") }
        for entry in kafkaConfig where !entry.contains("=") {
            throw ValidationError("--kafka-config wants key=value, got '\(entry.split(separator: "=").first ?? "")'")
        }
    }

    /// The client configuration: brokers, the properties file, then `--kafka-config` entries.
    func configuration() throws -> KafkaConfiguration {
        // librdkafka's own messages go into the same log lines, under the same level, for every
        // client made from this configuration.
        KafkaLibraryLog.route(to: logger(label: "librdkafka"))
        var configuration = KafkaConfiguration(bootstrapServers: brokers)
        if let kafkaConfigFile {
            let text: String
            do {
                text = try String(contentsOfFile: kafkaConfigFile, encoding: .utf8)
            } catch {
                throw ValidationError("\(kafkaConfigFile): cannot read: \(error.localizedDescription)")
            }
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let trimmed = line.trimmingCharacters(in: .whitespaces)
                if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
                guard let (key, value) = Self.property(trimmed) else {
                    throw ValidationError("\(kafkaConfigFile): line \(number + 1): expected key=value")
                }
                configuration[key] = value
            }
        }
        for entry in kafkaConfig {
            if let (key, value) = Self.property(entry) { configuration[key] = value }
        }
        return configuration
    }

    private static func property(_ text: String) -> (String, String)? {
        guard let equals = text.firstIndex(of: "=") else { return nil }
        let key = text[..<equals].trimmingCharacters(in: .whitespaces)
        guard !key.isEmpty else { return nil }
        return (key, String(text[text.index(after: equals)...]).trimmingCharacters(in: .whitespaces))
    }

    /// A logger writing one line per entry to standard error at `--log-level`.
    func logger(label: String) -> Logger {
        LoggingSystem.bootstrapOnce(format: logFormat)
        var logger = Logger(label: label)
        logger.logLevel = Logger.Level(rawValue: logLevel) ?? .info
        return logger
    }
}

extension LineLogHandler.Format: ExpressibleByArgument {}

extension LoggingSystem {
    private static let bootstrapped = Mutex(false)

    /// Bootstraps one-line logging to standard error, once per process.
    static func bootstrapOnce(format: LineLogHandler.Format) {
        bootstrapped.withLock { done in
            guard !done else { return }
            LoggingSystem.bootstrap { LineLogHandler(label: $0, format: format) }
            done = true
        }
    }
}
