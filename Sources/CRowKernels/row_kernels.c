#include "CRowKernels.h"

#include <math.h>

// Each product and sum rounded on its own, whatever the instruction set (see the header).
#pragma clang fp contract(off)

#if defined(__x86_64__)
// AVX-512 (x86-64-v4), AVX2 with FMA and F16C (v3), and the SSE2 baseline.
#define LEEP_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define LEEP_CLONES
#endif

// Eight lanes as clang vectors: one AVX-512 register of doubles, two AVX2 ones, four SSE2 ones;
// the compiler picks the instructions for each clone.
typedef float f32x8 __attribute__((ext_vector_type(8)));
typedef double f64x8 __attribute__((ext_vector_type(8)));
typedef _Float16 f16x8 __attribute__((ext_vector_type(8)));
typedef int32_t i32x8 __attribute__((ext_vector_type(8)));
typedef int64_t i64x8 __attribute__((ext_vector_type(8)));

// Unaligned views of eight elements; loads through them are plain vector loads. Macros rather
// than functions: a vector argument or result would change the calling convention between clones.
typedef float f32x8u __attribute__((ext_vector_type(8), aligned(4)));
typedef double f64x8u __attribute__((ext_vector_type(8), aligned(8)));
typedef _Float16 f16x8u __attribute__((ext_vector_type(8), aligned(2)));
#define load_f16(p) __builtin_convertvector((f16x8)(*(const f16x8u *)(p)), f32x8)
#define load_f32(p) ((f32x8)(*(const f32x8u *)(p)))
#define load_f64(p) ((f64x8)(*(const f64x8u *)(p)))
#define store_f64(p, v) (*(f64x8u *)(p) = (v))

// Eight lanes, reduced pairwise in a fixed order.
#define reduce8(lanes)                                                                             \
    ((((lanes)[0] + (lanes)[1]) + ((lanes)[2] + (lanes)[3])) +                                     \
     (((lanes)[4] + (lanes)[5]) + ((lanes)[6] + (lanes)[7])))

// The body of a summary for element type T, whose values are compared as vectors VF of F (exact:
// widening keeps the order; VI the integer lanes of the same width) and summed as doubles. ADD
// is a constant at each use, so the loop is compiled with and without the joint update.
#define SUMMARY_BODY(T, F, VF, VI, LOAD, ADD)                                                      \
    f64x8 sums = 0;                                                                                \
    VF lows = (F)INFINITY, highs = (F)-INFINITY;                                                   \
    VI columns = {0, 1, 2, 3, 4, 5, 6, 7}; /* each lane's first column holding its largest */     \
    VI next = columns;                                                                             \
    long j = 0;                                                                                    \
    for (; j + 8 <= count; j += 8) {                                                               \
        VF value = LOAD(row + j);                                                                  \
        f64x8 wide = __builtin_convertvector(value, f64x8);                                        \
        sums += wide;                                                                              \
        lows = __builtin_elementwise_min(lows, value);                                             \
        VI larger = value > highs;                                                                 \
        columns = (next & larger) | (columns & ~larger);                                           \
        highs = __builtin_elementwise_max(highs, value);                                           \
        next += 8;                                                                                 \
        if (ADD) {                                                                                 \
            store_f64(joint + j, load_f64(joint + j) + wide);                                      \
        }                                                                                          \
    }                                                                                              \
    double sum = reduce8(sums);                                                                    \
    /* The largest value, and the smallest column holding it among the lanes (ties: lowest). */   \
    F low = lows[0], high = highs[0];                                                              \
    long argmax = j > 0 ? (long)columns[0] : 0;                                                    \
    for (int k = 1; k < 8; k++) {                                                                  \
        low = lows[k] < low ? lows[k] : low;                                                       \
        /* Selects, not branches: on short rows a mispredicted branch costs more than the row. */ \
        int better = (highs[k] > high) | ((highs[k] == high) & ((long)columns[k] < argmax));       \
        argmax = better ? (long)columns[k] : argmax;                                               \
        high = better ? highs[k] : high;                                                           \
    }                                                                                              \
    for (; j < count; j++) {                                                                       \
        F value = (F)row[j];                                                                       \
        sum += (double)value;                                                                      \
        low = value < low ? value : low;                                                           \
        argmax = value > high ? j : argmax;                                                        \
        high = value > high ? value : high;                                                        \
        if (ADD) joint[j] += (double)value;                                                        \
    }                                                                                              \
    summary->sum = sum;                                                                            \
    summary->minimum = (double)low;                                                                \
    summary->maximum = (double)high;                                                               \
    summary->argmax = argmax;

// A summary of one row, inlined into each clone's loop (a helper of its own would be compiled
// for the baseline only).
#define DEFINE_SUMMARY(SUFFIX, T, F, VF, VI, LOAD)                                                 \
    static inline __attribute__((always_inline)) void summarise_##SUFFIX(                          \
        const T *row, long count, double *joint, leep_row_summary *summary) {                     \
        if (joint != 0) {                                                                          \
            SUMMARY_BODY(T, F, VF, VI, LOAD, 1)                                                    \
        } else {                                                                                   \
            SUMMARY_BODY(T, F, VF, VI, LOAD, 0)                                                    \
        }                                                                                          \
    }                                                                                              \
    LEEP_CLONES void leep_row_summary_##SUFFIX(                                                    \
        const void *row, long count, double *joint, leep_row_summary *summary) {       \
        summarise_##SUFFIX((const T *)row, count, joint, summary);                                 \
    }                                                                                              \
    LEEP_CLONES long leep_rows_add_##SUFFIX(                                                       \
        const void *stored, long rows, long count, const int32_t *labels,              \
        const int32_t *order, double tolerance, double *joint, int64_t *counts) {                 \
        const T *all = (const T *)stored;                                                          \
        for (long position = 0; position < rows; position++) {                                     \
            long i = order != 0 ? order[position] : position;                                      \
            long label = labels[i];                                                                \
            leep_row_summary summary;                                                              \
            summarise_##SUFFIX(all + i * count, count, joint + label * count, &summary);           \
            if (!(isfinite(summary.sum) && !(summary.minimum < 0) && fabs(summary.sum - 1) <= tolerance)) \
                return position;                                                                   \
            counts[label * count + summary.argmax] += 1;                                           \
        }                                                                                          \
        return rows;                                                                               \
    }

#define DEFINE_DOT(SUFFIX, T, LOAD)                                                                \
    static inline __attribute__((always_inline)) double dot_##SUFFIX(                              \
        const T *row, const double *weights, long count) {                                         \
        f64x8 sums = 0;                                                                            \
        long j = 0;                                                                                \
        for (; j + 8 <= count; j += 8)                                                             \
            sums += __builtin_convertvector(LOAD(row + j), f64x8) * load_f64(weights + j);         \
        double sum = reduce8(sums);                                                                \
        for (; j < count; j++) sum += (double)row[j] * weights[j];                                 \
        return sum;                                                                                \
    }                                                                                              \
    LEEP_CLONES void leep_rows_eep_##SUFFIX(                                                       \
        const void *stored, long rows, long count, const int32_t *labels,              \
        const int32_t *order, const double *table, double *eep) {                                 \
        const T *all = (const T *)stored;                                                          \
        for (long position = 0; position < rows; position++) {                                     \
            long i = order != 0 ? order[position] : position;                                      \
            eep[position] = dot_##SUFFIX(all + i * count, table + (long)labels[i] * count, count);  \
        }                                                                                          \
    }


// Rows with more than 2^31 columns (8 GiB of float32 each) are not supported: float32 column
// lanes are 32-bit.
DEFINE_SUMMARY(f16, _Float16, float, f32x8, i32x8, load_f16)
DEFINE_SUMMARY(f32, float, float, f32x8, i32x8, load_f32)
DEFINE_SUMMARY(f64, double, double, f64x8, i64x8, load_f64)
DEFINE_DOT(f16, _Float16, load_f16)
DEFINE_DOT(f32, float, load_f32)
DEFINE_DOT(f64, double, load_f64)
