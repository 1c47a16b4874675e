// OpenBLAS's CBLAS interface; pkg-config `openblas` points the include path at it.
#include <cblas.h>
