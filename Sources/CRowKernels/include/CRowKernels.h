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

/// The summary of the `count` values at `row`, in one read; with `joint`, also
/// joint[k] += (double)row[k] for every k in the same read (pass 1's joint row of its label).
void leep_row_summary_f16(const uint16_t *row, long count, double *_Nullable joint, leep_row_summary *summary);
void leep_row_summary_f32(const float *row, long count, double *_Nullable joint, leep_row_summary *summary);
void leep_row_summary_f64(const double *row, long count, double *_Nullable joint, leep_row_summary *summary);

/// Σ_k (double)row[k] · weights[k]: one EEP_i (pass 2, the conditional's row of the label).
double leep_row_dot_f16(const uint16_t *row, const double *weights, long count);
double leep_row_dot_f32(const float *row, const double *weights, long count);
double leep_row_dot_f64(const double *row, const double *weights, long count);

#pragma clang assume_nonnull end

#endif
