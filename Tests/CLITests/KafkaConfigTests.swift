import Foundation
import Testing

/// Kafka properties pass through to librdkafka, and secrets stay out of what is printed.
@Suite struct KafkaConfigTests {
    let command = ScoreCommandTests()

    @Test func anInvalidPropertyIsNamedButNoSecretIsPrinted() throws {
        let outcome = try command.leep([
            "topics", "create", "--brokers", "127.0.0.1:1", "--kafka-config", "sasl.password=hunter2",
            "--kafka-config", "ssl.key.password=swordfish", "--kafka-config", "no.such.property=1",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.standardError.contains("no.such.property"))
        #expect(!outcome.standardError.contains("hunter2") && !outcome.standardError.contains("swordfish"))
        #expect(!outcome.standardOutput.contains("hunter2"))
    }

    /// librdkafka's own messages (here: the broker cannot be reached) come out as the same
    /// one-line entries as leep's, in JSON with `--log-format json`.
    @Test func librdkafkaMessagesAreLogLinesToo() throws {
        let outcome = try command.leep([
            "scores", "--brokers", "127.0.0.1:1", "--wait-count", "1", "--timeout", "1", "--log-format", "json",
        ])
        #expect(outcome.status != 0)
        let lines = outcome.standardError.split(separator: "\n").filter { !$0.hasPrefix("Error:") }
        let entries = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String] }
        #expect(!entries.isEmpty && entries.count == lines.count, "every log line is one JSON object: \(lines.prefix(3))")
        #expect(entries.contains { $0["logger"] == "librdkafka" && $0["level"] == "error" && $0["facility"] != nil })
        #expect(entries.allSatisfy { $0["ts"] != nil && $0["msg"] != nil })
    }

    @Test func aBadValueNamesTheProperty() throws {
        let outcome = try command.leep([
            "topics", "create", "--brokers", "127.0.0.1:1", "--kafka-config", "security.protocol=hunter2",
        ])
        #expect(outcome.status != 0)
        #expect(outcome.standardError.contains("security.protocol"))
    }

    @Test func aPropertiesFileIsReadAndItsErrorsNameTheLine() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("leep-config-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let file = directory.appendingPathComponent("client.properties")
        try "# TLS\nsecurity.protocol=SSL\nsasl.password=hunter2\nnot a property\n".write(to: file, atomically: true, encoding: .utf8)
        let outcome = try command.leep(["topics", "create", "--brokers", "127.0.0.1:1", "--kafka-config-file", file.path])
        #expect(outcome.status != 0)
        #expect(outcome.standardError.contains("\(file.path): line 4: expected key=value"))
        #expect(!outcome.standardError.contains("hunter2"))
    }
}
