/// ‖a − b‖∞ / max(‖b‖∞, tiny), or / `scale` when given: a normwise relative error, since entries
/// that are 0 in exact arithmetic come out as rounding noise in any order of summation.
public func normwiseRelativeError(_ a: [Double], _ b: [Double], scale: Double? = nil) -> Double {
    let scale = max(scale ?? b.map(abs).max() ?? 0, 1e-300)
    return zip(a, b).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}
