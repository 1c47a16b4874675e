import COpenBLAS
import RealModule

/// The Cholesky factor of a symmetric positive definite D×D matrix (LAPACK `dpotrf`): its
/// log-determinant (TransRate's coding rates) and solves with it (SFDA's discriminants).
struct Cholesky {
    /// The factor, in LAPACK's column-major lower triangle (the row-major upper one).
    private let factor: [Double]
    let dimension: Int
    /// ‖A‖₁, for the condition estimate.
    private let norm: Double

    /// Factors the matrix whose upper triangle (row-major) is in `upper`; nil when it is not
    /// numerically positive definite.
    init?(upper: [Double], dimension: Int) {
        var columnSums = [Double](repeating: 0, count: dimension)
        for i in 0..<dimension {
            columnSums[i] += abs(upper[i * dimension + i])
            for j in (i + 1)..<dimension {
                let value = abs(upper[i * dimension + j])
                columnSums[i] += value
                columnSums[j] += value
            }
        }
        var matrix = upper
        var n = Int32(dimension)
        var info: Int32 = 0
        BLAS.call { blas in blas.dpotrf("L", &n, &matrix, &n, &info, 1) }
        guard info == 0 else { return nil }
        factor = matrix
        self.dimension = dimension
        norm = columnSums.max() ?? 0
    }

    /// LAPACK's estimate of 1/κ₁(A) = 1/(‖A‖₁‖A⁻¹‖₁) from the factor (`dpocon`), in O(D²): what
    /// tells a numerically singular matrix without an eigenvalue computation.
    var reciprocalCondition: Double {
        var n = Int32(dimension)
        var norm = norm
        var reciprocal = 0.0
        var work = [Double](repeating: 0, count: 3 * dimension)
        var integerWork = [Int32](repeating: 0, count: dimension)
        var info: Int32 = 0
        BLAS.call { blas in blas.dpocon("L", &n, factor, &n, &norm, &reciprocal, &work, &integerWork, &info, 1) }
        precondition(info == 0, "dpocon rejected its arguments (info \(info))")
        return reciprocal
    }

    /// log det A = 2 Σ log L_kk.
    var logDeterminant: Double {
        (0..<dimension).reduce(0) { $0 + 2 * Double.log(factor[$1 * dimension + $1]) }
    }

    /// X = A⁻¹B for the `count` right-hand sides b_r, given and returned as rows (count × D).
    func solve(rows: [Double], count: Int) -> [Double] {
        var solution = rows
        var n = Int32(dimension)
        var columns = Int32(count)
        var info: Int32 = 0
        BLAS.call { blas in blas.dpotrs("L", &n, &columns, factor, &n, &solution, &n, &info, 1) }
        precondition(info == 0, "dpotrs rejected its arguments (info \(info))")
        return solution
    }
}
