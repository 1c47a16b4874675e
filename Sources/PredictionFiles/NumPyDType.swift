/// The element types leepstream reads from `.npy` files, all little-endian.
public enum NumPyDType: String, Sendable, CaseIterable {
    case float16 = "f2", float32 = "f4", float64 = "f8"
    case int8 = "i1", int16 = "i2", int32 = "i4", int64 = "i8"
    case uint8 = "u1", uint16 = "u2", uint32 = "u4", uint64 = "u8"

    /// Bytes per element. A switch, not a parse of the raw value: label reads call it per row.
    public var size: Int {
        switch self {
        case .int8, .uint8: 1
        case .float16, .int16, .uint16: 2
        case .float32, .int32, .uint32: 4
        case .float64, .int64, .uint64: 8
        }
    }

    /// True for the floating-point types (prediction files).
    public var isFloatingPoint: Bool { rawValue.hasPrefix("f") }

    /// Parses a NumPy `descr` such as `<f4`, `|u1` or `=i8`; nil for anything else, including
    /// big-endian data (`>f4`), which this little-endian reader would misread.
    init?(descr: String) {
        guard let order = descr.first, "<|=".contains(order) else { return nil }
        // '|' (not applicable) is how NumPy marks one-byte types; '=' is native, little-endian here.
        self.init(rawValue: String(descr.dropFirst()))
        if order == "|" && size != 1 { return nil }
    }
}
