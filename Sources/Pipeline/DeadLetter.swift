import Kafka
import WireFormat

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

extension DeadLetter {
    /// Why a record is not a frame, in the words of its dead letter.
    struct Refusal: Error {
        let reason: String
    }

    /// The record's frame, or why it has none: a null value (a tombstone) is named as one, not
    /// as an empty frame.
    static func frame(of message: KafkaMessage) -> Result<Frame, Refusal> {
        if message.hasNullValue { return .failure(Refusal(reason: "the record has a null value (a tombstone), not a frame")) }
        do {
            return .success(try Frame.decode(message.value))
        } catch {
            return .failure(Refusal(reason: error.description))
        }
    }
}
