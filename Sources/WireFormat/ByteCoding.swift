/// Appends little-endian fields to a frame under construction.
///
/// Hand-written rather than taken from swift-nio's `ByteBuffer`: frames are read straight out
/// of librdkafka's message memory (a raw pointer), and a few dozen lines here avoid both a copy
/// into a `ByteBuffer` and a dependency on NIO for the numerics-facing modules.
struct ByteWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int) { bytes.reserveCapacity(capacity) }

    mutating func write<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.littleEndian) { bytes.append(contentsOf: $0) }
    }

    mutating func write(_ value: Double) { write(value.bitPattern) }

    mutating func write(_ value: String) {
        let utf8 = Array(value.utf8)
        precondition(utf8.count <= Int(UInt16.max), "strings on the wire are at most 65535 bytes")
        write(UInt16(utf8.count))
        bytes.append(contentsOf: utf8)
    }

    mutating func write(raw: UnsafeRawBufferPointer) { bytes.append(contentsOf: raw) }

    /// Pads with zeros to a multiple of 8 bytes, so arrays that follow are aligned for direct use.
    mutating func alignTo8() {
        while bytes.count % 8 != 0 { bytes.append(0) }
    }
}

/// Reads little-endian fields from a frame, refusing to read past its end.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    private(set) var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var remaining: Int { bytes.count - offset }

    mutating func read<T: FixedWidthInteger>(_: T.Type, _ field: StaticString) throws(FrameError) -> T {
        let size = MemoryLayout<T>.size
        guard remaining >= size else { throw .truncated(field: "\(field)", needed: size, available: remaining) }
        let value = T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
        offset += size
        return value
    }

    mutating func readDouble(_ field: StaticString) throws(FrameError) -> Double {
        Double(bitPattern: try read(UInt64.self, field))
    }

    mutating func readString(_ field: StaticString) throws(FrameError) -> String {
        let length = Int(try read(UInt16.self, field))
        let raw = try readRaw(count: length, field)
        guard let text = String(validating: raw, as: UTF8.self) else { throw .invalidText(field: "\(field)") }
        return text
    }

    /// A count that the frame's remaining bytes can hold, `elementSize` bytes per element.
    mutating func readCount(_ field: StaticString, elementSize: Int) throws(FrameError) -> Int {
        let count = Int(try read(UInt32.self, field))
        guard count.multipliedReportingOverflow(by: elementSize).partialValue <= remaining else {
            throw .countExceedsFrame(field: "\(field)", count: count, available: remaining)
        }
        return count
    }

    mutating func readRaw(count: Int, _ field: StaticString) throws(FrameError) -> UnsafeRawBufferPointer {
        guard count >= 0, remaining >= count else { throw .truncated(field: "\(field)", needed: count, available: remaining) }
        let slice = UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + count)])
        offset += count
        return slice
    }

    /// Skips the zero padding that aligns the next array to 8 bytes.
    mutating func skipPadding() throws(FrameError) {
        while offset % 8 != 0 {
            guard try read(UInt8.self, "padding") == 0 else { throw .nonZeroPadding }
        }
    }

    /// Reads `count` values of `T` (copied, so the result is aligned and owned).
    mutating func readArray<T: FixedWidthInteger>(_: T.Type, count: Int, _ field: StaticString) throws(FrameError) -> [T] {
        let raw = try readRaw(count: count * MemoryLayout<T>.size, field)
        return (0..<count).map { T(littleEndian: raw.loadUnaligned(fromByteOffset: $0 * MemoryLayout<T>.size, as: T.self)) }
    }

    mutating func readDoubles(count: Int, _ field: StaticString) throws(FrameError) -> [Double] {
        try readArray(UInt64.self, count: count, field).map(Double.init(bitPattern:))
    }

    /// Fails unless every byte was consumed: a frame longer than its fields is malformed too.
    func expectEnd() throws(FrameError) {
        guard remaining == 0 else { throw .trailingBytes(remaining) }
    }
}
