import COpenBLAS

/// The eigenvalues λ_k of a real symmetric D×D matrix A = W diag(λ) Wᵀ, and the projections
/// w_kᵀ b of a few vectors b onto its eigenvectors: all that LogME and the H-scores need.
///
/// LAPACK's `dsyevr` would form W (D×D) by applying the tridiagonal reduction to the
/// tridiagonal matrix's eigenvectors, 2·D³ more flops. Here the reduction A = Q T Qᵀ
/// (`dsytrd`) is applied to the few vectors instead (`dormtr`: Qᵀb), T = Z diag(λ) Zᵀ is
/// decomposed by MRRR (`dstevr`, O(D²) for the eigenvectors), and w_kᵀb = z_kᵀ(Qᵀb): the same
/// numbers `dsyevr` would give, for about half the time at D = 2,048.
struct SymmetricSpectrum {
    /// λ, ascending.
    let values: [Double]
    /// Row c holds w_kᵀ b_c for k = 0..<D, in the order of `values`.
    let projections: [Double]

    /// Decomposes the matrix whose upper triangle (row-major, (i, j≥i) at i·D + j) is in
    /// `upper` — the strict lower triangle is not read — and projects the `count` rows of
    /// `rows` (count × D, row-major).
    init(upper: [Double], dimension: Int, projecting rows: [Double], count: Int) throws(EigenFailure) {
        precondition(upper.count == dimension * dimension && rows.count == count * dimension)
        var n = Int32(dimension)
        var info: Int32 = 0
        var matrix = upper
        var diagonal = [Double](repeating: 0, count: dimension)
        var offDiagonal = [Double](repeating: 0, count: max(1, dimension))
        var reflectors = [Double](repeating: 0, count: max(1, dimension))
        var vectors = rows
        var columns = Int32(count)
        // A row-major upper triangle is LAPACK's column-major lower one ("L"); the rows of
        // `vectors` are the columns of a column-major D × count matrix.
        BLAS.call { blas in
            var size = [Double](repeating: 0, count: 1)
            var query: Int32 = -1
            blas.dsytrd("L", &n, &matrix, &n, &diagonal, &offDiagonal, &reflectors, &size, &query, &info, 1)
            guard info == 0 else { return }
            var work = [Double](repeating: 0, count: max(1, Int(size[0])))
            var length = Int32(work.count)
            blas.dsytrd("L", &n, &matrix, &n, &diagonal, &offDiagonal, &reflectors, &work, &length, &info, 1)
            guard info == 0, count > 0 else { return }
            blas.dormtr("L", "L", "T", &n, &columns, matrix, &n, reflectors, &vectors, &n, &size, &query, &info, 1, 1, 1)
            guard info == 0 else { return }
            work = [Double](repeating: 0, count: max(1, Int(size[0])))
            length = Int32(work.count)
            blas.dormtr("L", "L", "T", &n, &columns, matrix, &n, reflectors, &vectors, &n, &work, &length, &info, 1, 1, 1)
        }
        guard info == 0 else { throw EigenFailure(info: Int(info), dimension: dimension) }
        var values = [Double](repeating: 0, count: dimension)
        var eigenvectors = [Double](repeating: 0, count: dimension * dimension)
        var found: Int32 = 0
        var support = [Int32](repeating: 0, count: 2 * max(1, dimension))
        let bound = [0.0]
        let index: [Int32] = [0]
        // abstol 0: LAPACK's default, the accuracy MRRR guarantees anyway.
        let tolerance = [0.0]
        BLAS.call { blas in
            var size = [Double](repeating: 0, count: 1)
            var isize = [Int32](repeating: 0, count: 1)
            var query: Int32 = -1
            blas.dstevr(
                "V", "A", &n, &diagonal, &offDiagonal, bound, bound, index, index, tolerance, &found, &values,
                &eigenvectors, &n, &support, &size, &query, &isize, &query, &info, 1, 1)
            guard info == 0 else { return }
            var work = [Double](repeating: 0, count: max(1, Int(size[0])))
            var iwork = [Int32](repeating: 0, count: max(1, Int(isize[0])))
            var length = Int32(work.count)
            var ilength = Int32(iwork.count)
            blas.dstevr(
                "V", "A", &n, &diagonal, &offDiagonal, bound, bound, index, index, tolerance, &found, &values,
                &eigenvectors, &n, &support, &work, &length, &iwork, &ilength, &info, 1, 1)
        }
        guard info == 0, Int(found) == dimension else { throw EigenFailure(info: Int(info), dimension: dimension) }
        // Z comes back column-major: row k of the row-major reading is z_k. w_kᵀb = z_kᵀ(Qᵀb).
        var projections = [Double](repeating: 0, count: count * dimension)
        if count > 0 {
            BLAS.call { blas in
                blas.dgemm(
                    CblasRowMajor, CblasNoTrans, CblasTrans, columns, n, n, 1, vectors, n, eigenvectors, n, 0,
                    &projections, n)
            }
        }
        self.values = values
        self.projections = projections
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
        "the eigen-decomposition of a \(dimension)×\(dimension) matrix failed (LAPACK info \(info))"
    }
}
