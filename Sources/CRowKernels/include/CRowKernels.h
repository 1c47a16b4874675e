// The per-row loops of LEEP's two passes, in C so that each is compiled for several
// instruction sets and the best one the CPU has is picked when the program loads (clang's
// target_clones, resolved through an ifunc): Swift compiles a whole module for one target, and
// a binary for every x86-64 machine gets SSE2 code with two doubles a register. Pure
// arithmetic, no state.
//
// Every sum is kept in eight lanes reduced in a fixed order, and contraction into fused
// multiply-adds is off, so every clone gives the same bits: a run scored on an AVX-512 worker
// and on an SSE2 one merges into the same numbers.
#ifndef LEEP_CROWKERNELS_H
#define LEEP_CROWKERNELS_H

#include <stdint.h>

#pragma clang assume_nonnull begin

/// One row's sum (float64), smallest and largest values, and the first column holding the
/// largest (for a row without NaN; a row with NaN has a NaN sum).
typedef struct leep_row_summary {
    double sum;
    double minimum;
    double maximum;
    long argmax;
} leep_row_summary;

/// Rows are passed untyped; each function's suffix says how they are stored (f16: IEEE half,
/// f32, f64).
///
/// The summary of the `count` values at `row`, in one read; with `joint`, also
/// joint[k] += (double)row[k] for every k in the same read (pass 1's joint row of its label).
void leep_row_summary_f16(const void *row, long count, double *_Nullable joint, leep_row_summary *summary);
void leep_row_summary_f32(const void *row, long count, double *_Nullable joint, leep_row_summary *summary);
void leep_row_summary_f64(const void *row, long count, double *_Nullable joint, leep_row_summary *summary);

/// Pass 1 over `rows` rows of `count` values at `rows_base`, taken in `order` when given (row
/// indices) or front to back: each row is added to the joint row of its label (`labels`, already
/// checked against the joint's Y) and, if it passes the check (finite, no negative value, sum
/// within `tolerance` of 1), its argmax counted in `counts` (Y × count). Returns the position in
/// the visiting order of the first row that fails the check — having added that row to the joint,
/// so the caller must discard the accumulator — or `rows` when all pass.
long leep_rows_add_f16(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, double tolerance, double *joint, int64_t *counts);
long leep_rows_add_f32(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, double tolerance, double *joint, int64_t *counts);
long leep_rows_add_f64(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, double tolerance, double *joint, int64_t *counts);

/// Pass 2: eep[p] = Σ_k row_i[k] · table[labels[i]·count + k] for the p-th row i of the visiting
/// order (`order`, or front to back).
void leep_rows_eep_f16(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, const double *table, double *eep);
void leep_rows_eep_f32(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, const double *table, double *eep);
void leep_rows_eep_f64(const void *rows_base, long rows, long count, const int32_t *labels,
                       const int32_t *_Nullable order, const double *table, double *eep);

#pragma clang assume_nonnull end

#endif
