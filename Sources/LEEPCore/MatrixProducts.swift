import CBLAS

/// The BLAS that computes pass 2's matrix products (OpenBLAS).
public enum MatrixProducts {
    /// Makes each matrix product run on the calling thread only. Callers that already keep
    /// every core busy (one slice of rows per core, or one worker process per core) call this
    /// once, so BLAS's own threads do not oversubscribe the machine.
    public static func useCallingThreadOnly() {
        openblas_set_num_threads(1)
    }
}
