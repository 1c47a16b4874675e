// OpenBLAS, loaded at run time rather than linked.
//
// Loading it ourselves lets leepstream choose OpenBLAS's kernels before the library's
// constructor does: a distribution's OpenBLAS picks its kernels from the CPU's model number, and
// one older than the CPU (Debian 12's 0.3.21 on Intel family 6 model 207) falls back to its
// oldest x86-64 kernels, 3× slower at DGEMM. `leep_blas_load` names the kernels from the CPU's
// features instead (OPENBLAS_CORETYPE, unless the environment already sets it) and keeps the
// library from starting a thread pool (OPENBLAS_NUM_THREADS=1, unless set): leepstream calls
// BLAS from one thread per slice of rows. It also means that what a build links never depends
// on which OpenBLAS build was installed when the package manifest was evaluated.
#ifndef LEEP_COPENBLAS_H
#define LEEP_COPENBLAS_H

// The CBLAS types and prototypes (libopenblas-dev); only their types are used: the addresses
// come from dlsym.
#include <cblas.h>
#include <stddef.h>

#pragma clang assume_nonnull begin

// LAPACK routines that OpenBLAS's library also exports, as gfortran compiles them: every
// argument by reference, the length of each character argument as a trailing hidden size_t.

// The pieces of dsyevr, for when only the eigenvalues and the projections of a few vectors
// onto the eigenvectors are needed: reduce to tridiagonal form, apply the reduction to the
// vectors, and decompose the tridiagonal matrix (its eigenvectors cost O(D²), where forming
// the full matrix's would cost another 2·D³).
typedef void leep_dsytrd_t(const char *uplo, const int *n, double *a, const int *lda, double *d, double *e,
                           double *tau, double *work, const int *lwork, int *info, size_t uplo_len);
typedef void leep_dormtr_t(const char *side, const char *uplo, const char *trans, const int *m, const int *n,
                           const double *a, const int *lda, const double *tau, double *c, const int *ldc,
                           double *work, const int *lwork, int *info, size_t side_len, size_t uplo_len,
                           size_t trans_len);
typedef void leep_dstevr_t(const char *jobz, const char *range, const int *n, double *d, double *e,
                           const double *vl, const double *vu, const int *il, const int *iu,
                           const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
                           double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                           size_t jobz_len, size_t range_len);
// Cholesky factorisation of a symmetric positive definite matrix: TransRate's log-determinants
// and SFDA's solves with the shrunk within-class scatter.
typedef void leep_dpotrf_t(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
typedef void leep_dpotrs_t(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
                           double *b, const int *ldb, int *info, size_t uplo_len);
// The reciprocal condition number in the 1-norm, estimated from the Cholesky factor in O(D²):
// SFDA's check that its shrunk within-class scatter is not numerically singular.
typedef void leep_dpocon_t(const char *uplo, const int *n, const double *a, const int *lda, const double *anorm,
                           double *rcond, double *work, int *iwork, int *info, size_t uplo_len);

/// The loaded library: the routines leepstream calls, and what it is.
typedef struct leep_blas {
    __typeof__(cblas_dgemm) *dgemm;
    __typeof__(cblas_dgemv) *dgemv;
    __typeof__(cblas_dsymv) *dsymv;
    __typeof__(cblas_dsyr) *dsyr;
    __typeof__(cblas_dsyrk) *dsyrk;
    leep_dsytrd_t *dsytrd;
    leep_dormtr_t *dormtr;
    leep_dstevr_t *dstevr;
    leep_dpotrf_t *dpotrf;
    leep_dpotrs_t *dpotrs;
    leep_dpocon_t *dpocon;
    /// The file loaded.
    const char *path;
    /// openblas_get_config(): version and build options.
    const char *config;
    /// openblas_get_corename(): the kernels it runs.
    const char *corename;
    /// Why those kernels: chosen from the CPU's features, set in the environment, or the
    /// library's own choice.
    const char *corename_source;
    /// openblas_get_parallel(): 0 for the single-threaded build, whose shared work buffers make
    /// concurrent calls unsafe; 1 (pthreads) or 2 (OpenMP) for builds that lock them.
    int parallel;
} leep_blas;

/// Loads OpenBLAS once per process (thread-safe). $LEEP_BLAS_LIBRARY names the file when set;
/// otherwise Debian's pthreads build, then whatever `libopenblas.so.0` resolves to. NULL when no
/// library could be loaded; `leep_blas_error` then says why.
const leep_blas *_Nullable leep_blas_load(void);

/// Why `leep_blas_load` returned NULL.
const char *leep_blas_error(void);

/// `leep_blas_load`, or the reason on standard error and exit status 69 (EX_UNAVAILABLE): what
/// a process that needs BLAS would have met at start had the library been linked.
const leep_blas *leep_blas_load_or_exit(void);

#pragma clang assume_nonnull end

#endif
