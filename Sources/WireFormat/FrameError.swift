/// Why a byte string is not a valid leepstream frame. Each case names the field concerned, so
/// a dead-letter record says exactly what a foreign producer got wrong.
public enum FrameError: Error, Equatable, Sendable, CustomStringConvertible {
    case badMagic
    case unsupportedVersion(UInt8)
    case unknownKind(UInt8)
    case truncated(field: String, needed: Int, available: Int)
    case countExceedsFrame(field: String, count: Int, available: Int)
    case invalidText(field: String)
    case nonZeroPadding
    case trailingBytes(Int)
    case invalidValue(field: String, reason: String)

    /// The reason a frame without features that declares Z = 0 is refused (`source_classes`).
    static let noSourceClassesWithoutFeatures =
        "0 without features: a run sends softmax outputs (source_classes ≥ 1), features (feature_width ≥ 1) or both"

    public var description: String {
        switch self {
        case .badMagic: "bad magic: not a leepstream frame"
        case .unsupportedVersion(let version): "unsupported frame version \(version) (this build reads versions 1 to 3 of chunk and partial frames, 1 to 2 of manifest and task-result frames, 1 of the other kinds)"
        case .unknownKind(let kind): "unknown frame kind \(kind)"
        case .truncated(let field, let needed, let available):
            "truncated at \(field): needs \(needed) bytes, \(available) left"
        case .countExceedsFrame(let field, let count, let available):
            "\(field) = \(count) does not fit in the \(available) bytes left"
        case .invalidText(let field): "\(field) is not valid UTF-8"
        case .nonZeroPadding: "padding bytes are not zero"
        case .trailingBytes(let count): "\(count) bytes after the last field"
        case .invalidValue(let field, let reason): "\(field): \(reason)"
        }
    }
}
