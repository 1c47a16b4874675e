/// A fuzz input read as a stream of small choices, for the targets whose input is a script
/// (a sequence of events) rather than a byte format of its own.
///
/// Every byte string is a valid script: past the end every read returns its lowest value, so
/// libFuzzer's mutations (a byte flipped, a span copied) always change the script a little
/// instead of making it unreadable. `FuzzScript` writes the same encoding, for seeds.
struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var offset = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    var isAtEnd: Bool { offset >= bytes.count }

    mutating func byte() -> UInt8 {
        guard offset < bytes.count else { return 0 }
        defer { offset += 1 }
        return bytes[offset]
    }

    /// A value in `range`, read from as many bytes as the range needs (1, 2 or 8).
    mutating func int(in range: ClosedRange<Int>) -> Int {
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        var raw: UInt64 = 0
        for index in 0..<FuzzScript.width(span) { raw |= UInt64(byte()) << (8 * index) }
        let step = span == .max ? raw : raw % (span + 1)
        return range.lowerBound &+ Int(truncatingIfNeeded: step)
    }

    mutating func bool() -> Bool { byte() & 1 == 1 }

    /// The next `count` bytes, or fewer at the end.
    mutating func bytes(count: Int) -> UnsafeRawBufferPointer {
        let end = min(bytes.count, offset + max(0, count))
        defer { offset = max(offset, end) }
        return UnsafeRawBufferPointer(rebasing: bytes[min(offset, end)..<end])
    }
}

/// Writes scripts in `FuzzInput`'s encoding: the seeds of the script targets.
struct FuzzScript {
    private(set) var bytes: [UInt8] = []

    /// Bytes used for a value in a range of `span` + 1 values.
    static func width(_ span: UInt64) -> Int { span <= 0xFF ? 1 : span <= 0xFFFF ? 2 : 8 }

    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func int(_ value: Int, in range: ClosedRange<Int>) {
        precondition(range.contains(value), "\(value) is outside \(range)")
        let step = UInt64(bitPattern: Int64(value &- range.lowerBound))
        let span = UInt64(bitPattern: Int64(range.upperBound &- range.lowerBound))
        for index in 0..<Self.width(span) { bytes.append(UInt8(truncatingIfNeeded: step >> (8 * index))) }
    }

    mutating func bool(_ value: Bool) { bytes.append(value ? 1 : 0) }

    mutating func raw(_ data: [UInt8]) { bytes += data }
}

/// A broken invariant: traps, so libFuzzer records the input as a crash (and a replay fails).
func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String, file: StaticString = #file, line: UInt = #line) {
    if !condition() { fatalError("invariant broken: \(message())", file: file, line: line) }
}
