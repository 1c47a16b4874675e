import Kafka

/// A record that is not a valid frame, forwarded to the dead-letter topic unchanged, with why
/// and where it came from in its headers (`leep.reason`, `leep.source.topic`,
/// `leep.source.partition`, `leep.source.offset`).
struct DeadLetter {
    static func record(for message: KafkaMessage, reason: String, topic: String) -> OutgoingRecord {
        OutgoingRecord(
            topic: topic, key: message.key.map(Array.init), value: Array(message.value),
            headers: [
                ("leep.reason", Array(reason.utf8)),
                ("leep.source.topic", Array(message.topic.utf8)),
                ("leep.source.partition", Array(String(message.partition).utf8)),
                ("leep.source.offset", Array(String(message.offset).utf8)),
            ])
    }
}
