// OpenBLAS's CBLAS interface; pkg-config `openblas` points the include path at it.
#include <cblas.h>

// LAPACK's symmetric eigensolver (MRRR), which OpenBLAS's library also exports. There is no C
// header for it on Debian without LAPACKE, so the Fortran symbol is declared here. gfortran
// passes the length of each character argument as a trailing hidden size_t.
#include <stddef.h>
extern void dsyevr_(const char *jobz, const char *range, const char *uplo, const int *n, double *a,
                    const int *lda, const double *vl, const double *vu, const int *il, const int *iu,
                    const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t range_len, size_t uplo_len);

// The pieces of dsyevr, for when only the eigenvalues and the projections of a few vectors
// onto the eigenvectors are needed: reduce to tridiagonal form, apply the reduction to the
// vectors, and decompose the tridiagonal matrix (its eigenvectors cost O(D²), where forming
// the full matrix's would cost another 2·D³).
extern void dsytrd_(const char *uplo, const int *n, double *a, const int *lda, double *d, double *e,
                    double *tau, double *work, const int *lwork, int *info, size_t uplo_len);
extern void dormtr_(const char *side, const char *uplo, const char *trans, const int *m, const int *n,
                    const double *a, const int *lda, const double *tau, double *c, const int *ldc,
                    double *work, const int *lwork, int *info, size_t side_len, size_t uplo_len,
                    size_t trans_len);
extern void dstevr_(const char *jobz, const char *range, const int *n, double *d, double *e,
                    const double *vl, const double *vu, const int *il, const int *iu,
                    const double *abstol, int *m, double *w, double *z, const int *ldz, int *isuppz,
                    double *work, const int *lwork, int *iwork, const int *liwork, int *info,
                    size_t jobz_len, size_t range_len);

// Cholesky factorisation of a symmetric positive definite matrix: TransRate's log-determinants
// and SFDA's solves with the shrunk within-class scatter.
extern void dpotrf_(const char *uplo, const int *n, double *a, const int *lda, int *info, size_t uplo_len);
extern void dpotrs_(const char *uplo, const int *n, const int *nrhs, const double *a, const int *lda,
                    double *b, const int *ldb, int *info, size_t uplo_len);
// The reciprocal condition number in the 1-norm, estimated from the Cholesky factor in O(D²):
// SFDA's check that its shrunk within-class scatter is not numerically singular.
extern void dpocon_(const char *uplo, const int *n, const double *a, const int *lda, const double *anorm,
                    double *rcond, double *work, int *iwork, int *info, size_t uplo_len);
