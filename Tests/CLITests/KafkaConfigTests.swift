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
