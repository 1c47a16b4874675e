import Foundation
import Testing

/// librdkafka's C API is used in one layer: every call, constant and type of it in
/// `Sources/Kafka/RDKafka/`, so that the public Kafka types speak Swift only (the way
/// swift-kafka-client keeps every C call behind `RDKafkaClient`).
@Suite struct CLayerTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("Sources")

    @Test func librdkafkaIsCalledOnlyUnderRDKafka() throws {
        let layer = Self.sources.appendingPathComponent("Kafka/RDKafka").standardizedFileURL.path + "/"
        let files = try #require(FileManager.default.enumerator(at: Self.sources, includingPropertiesForKeys: nil))
            .compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 50, "the sources were found")
        var layerFiles = 0
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            let usesC = text.contains("import CRDKafka") || text.contains("rd_kafka_") || text.contains("RD_KAFKA_")
            if file.standardizedFileURL.path.hasPrefix(layer) {
                layerFiles += usesC ? 1 : 0
            } else {
                #expect(!usesC, "\(file.path) uses librdkafka's C API outside Sources/Kafka/RDKafka/")
            }
        }
        #expect(layerFiles >= 5, "the layer itself is where the calls are")
    }
}
