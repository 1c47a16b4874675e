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
