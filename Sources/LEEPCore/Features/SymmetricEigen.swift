import CBLAS

/// The eigen-decomposition A = V diag(λ) Vᵀ of a real symmetric matrix, through LAPACK's
/// `dsyevr` (relatively robust representations: O(D²) for the eigenvectors of the tridiagonal
/// form, so the O(D³) cost is the reduction to it and the back-transformation).
struct SymmetricEigen {
    /// λ, ascending.
    let values: [Double]
    /// The eigenvectors, row-major: row k is the unit eigenvector of `values[k]`.
    let vectors: [Double]
    /// D.
    let dimension: Int

    /// Decomposes the D×D symmetric matrix whose upper triangle (row-major, element (i, j≥i)
    /// at i·D + j) is in `upper`; the strict lower triangle is not read.
    init(upper: [Double], dimension: Int) throws(EigenFailure) {
        precondition(upper.count == dimension * dimension)
        var matrix = upper
        var values = [Double](repeating: 0, count: dimension)
        var vectors = [Double](repeating: 0, count: dimension * dimension)
        var n = Int32(dimension)
        var found: Int32 = 0
        var info: Int32 = 0
        var support = [Int32](repeating: 0, count: 2 * max(1, dimension))
        let bound = 0.0
        let index: Int32 = 0
        // abstol 0: LAPACK's default, eps·‖T‖, the accuracy dsyevr guarantees anyway.
        let tolerance = 0.0
        // A row-major upper triangle is LAPACK's column-major lower triangle. The eigenvectors
        // come back column-major, that is as rows of a row-major array: what `vectors` means.
        func call(work: inout [Double], lwork: Int32, iwork: inout [Int32], liwork: Int32) {
            var lwork = lwork
            var liwork = liwork
            dsyevr_(
                "V", "A", "L", &n, &matrix, &n, [bound], [bound], [index], [index], [tolerance], &found,
                &values, &vectors, &n, &support, &work, &lwork, &iwork, &liwork, &info, 1, 1, 1)
        }
        var workSize = [Double](repeating: 0, count: 1)
        var iworkSize = [Int32](repeating: 0, count: 1)
        BLASLock.run { call(work: &workSize, lwork: -1, iwork: &iworkSize, liwork: -1) }
        guard info == 0 else { throw EigenFailure(info: Int(info), dimension: dimension) }
        var work = [Double](repeating: 0, count: Int(workSize[0]))
        var iwork = [Int32](repeating: 0, count: Int(iworkSize[0]))
        BLASLock.run { call(work: &work, lwork: Int32(work.count), iwork: &iwork, liwork: Int32(iwork.count)) }
        guard info == 0, Int(found) == dimension else { throw EigenFailure(info: Int(info), dimension: dimension) }
        self.values = values
        self.vectors = vectors
        self.dimension = dimension
    }

    /// The projections Vᵀb of every row b of `rows` (count × D, row-major): row c of the
    /// result holds v_kᵀ b_c for k = 0..<D.
    func project(rows: [Double], count: Int) -> [Double] {
        guard count > 0 else { return [] }
        var result = [Double](repeating: 0, count: count * dimension)
        let d = Int32(dimension)
        BLASLock.run {
            cblas_dgemm(
                CblasRowMajor, CblasNoTrans, CblasTrans, Int32(count), d, d, 1, rows, d, vectors, d, 0, &result, d)
        }
        return result
    }
}

/// LAPACK could not decompose a matrix (its `info` code): a matrix with NaN or infinite entries
/// is the only cause expected in practice.
public struct EigenFailure: Error, Equatable, Sendable, CustomStringConvertible {
    /// LAPACK's `info`.
    public let info: Int
    /// D.
    public let dimension: Int

    public var description: String {
        "the eigen-decomposition of a \(dimension)×\(dimension) matrix failed (LAPACK dsyevr info \(info))"
    }
}
