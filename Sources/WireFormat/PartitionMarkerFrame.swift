/// Kind 9: a record an aggregator writes into one partition of the runs topic (or of the closed
/// topic) about the partition itself rather than about a run.
///
/// * A **barrier** tells a new owner of a partition that it has read everything written before
///   its assignment: it writes a barrier with a token of its own and is caught up when it reads
///   that barrier back. This works on any Kafka-compatible broker, whatever its end offsets say.
/// * A **dead-lettered** marker records that the malformed record at an offset of this partition
///   was sent to the dead-letter topic, so an owner that replays the partition later does not
///   send it again.
public struct PartitionMarkerFrame: Sendable, Equatable {
    /// What the marker says.
    public enum Marker: Sendable, Equatable {
        /// Everything before this record was written before the owner holding `token` asked.
        case barrier(token: UInt64)
        /// The record at `offset` of this partition was dead-lettered.
        case deadLettered(offset: Int64)
    }

    /// What the marker says.
    public let marker: Marker

    /// Creates a marker.
    public init(_ marker: Marker) { self.marker = marker }

    /// The bytes on the wire.
    public func encoded() -> [UInt8] {
        var writer = ByteWriter(kind: .partitionMarker, capacity: 24)
        switch marker {
        case .barrier(let token):
            writer.write(UInt8(1))
            writer.write(token)
        case .deadLettered(let offset):
            writer.write(UInt8(2))
            writer.write(offset)
        }
        return writer.bytes
    }

    init(reading reader: inout ByteReader) throws(FrameError) {
        switch try reader.read(UInt8.self, "marker") {
        case 1:
            marker = .barrier(token: try reader.read(UInt64.self, "token"))
        case 2:
            let offset = try reader.read(Int64.self, "offset")
            guard offset >= 0 else { throw .invalidValue(field: "offset", reason: "\(offset) is negative") }
            marker = .deadLettered(offset: offset)
        case let other:
            throw .invalidValue(field: "marker", reason: "unknown marker \(other)")
        }
    }
}
