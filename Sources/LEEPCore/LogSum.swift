import RealModule

/// Σ log xᵢ over many positive xᵢ at the cost of one multiplication each.
///
/// Pass 2 needs the log of every EEP_i; a libm `log` costs more than the whole dot product
/// when Z is small. The product of the values is kept instead, with its power of two moved into
/// an integer whenever it nears the ends of the float64 range, and one `log` is taken at the
/// end: log Π xᵢ = log m + k·ln 2. Each multiplication rounds by at most half an ulp, the same
/// relative error as computing xᵢ itself, so the sum agrees with Σ log xᵢ to ~1e-15 relative.
/// Values that are zero, subnormal or not finite go through `log` one by one, so they give
/// exactly what a per-value log would (−∞ for 0, NaN for NaN).
@usableFromInline
struct LogSum {
    @usableFromInline var product = 1.0
    @usableFromInline var powerOfTwo = 0
    @usableFromInline var irregular = 0.0

    @inlinable
    init() {}

    @inlinable @inline(__always)
    mutating func add(_ value: Double) {
        guard value.isNormal, value > 0 else {
            irregular += Double.log(value)
            return
        }
        product *= value
        // Keep the running product far from underflow and overflow: 2^±512 leaves room for
        // any normal factor.
        if !(product > 0x1p-512 && product < 0x1p512) {
            powerOfTwo += Int(product.exponent)
            product = product.significand
        }
    }

    /// Σ log xᵢ of every value added.
    @inlinable
    var total: Double {
        Double.log(product) + Double(powerOfTwo) * 0.693_147_180_559_945_309_417_232_121_458_176_568 + irregular
    }
}
