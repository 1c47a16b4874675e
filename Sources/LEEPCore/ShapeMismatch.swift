/// Two pieces of one computation disagree on Y or Z (a chunk of another run, a corrupt partial).
public struct ShapeMismatch: Error, Equatable, Sendable, CustomStringConvertible {
    /// (Y, Z) that was expected.
    public let expected: (targetClasses: Int, sourceClasses: Int)
    /// (Y, Z) that was given.
    public let actual: (targetClasses: Int, sourceClasses: Int)

    /// Creates the error from the expected and the actual shape.
    public init(expected: (Int, Int), actual: (Int, Int)) {
        self.expected = expected
        self.actual = actual
    }

    public static func == (lhs: ShapeMismatch, rhs: ShapeMismatch) -> Bool {
        lhs.expected == rhs.expected && lhs.actual == rhs.actual
    }

    public var description: String {
        "expected \(expected.targetClasses) target × \(expected.sourceClasses) source classes, "
            + "got \(actual.targetClasses) × \(actual.sourceClasses)"
    }
}
