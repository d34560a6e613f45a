// fm_activations.h: the elementwise activations of a dense layer and their derivatives.
//
// Forward, after the GEMM Z = A · W:    Z := σ(Z + b)        b added to every row of Z
// Backward, before the next GEMM:       Δ := Δ ⊙ σ'(z)       σ'(z) written in terms of the stored a = σ(z)
// Both are vectorised (SSE2, AVX2 + FMA or AVX-512, chosen at run time like the GEMM, see below) and
// numerically safe: any finite z gives a finite σ(z), with no overflow inside (but e^z, whose value
// itself can overflow).
#ifndef FM_ACTIVATIONS_H
#define FM_ACTIVATIONS_H

#include <stddef.h>

#include "fm_update.h"   // the other elementwise kernels, which share the levels below

// Activation codes, shared with fastmlp/_kernels.pyx (enum Activation).
enum {
    FM_IDENTITY = 0,   // σ(z) = z
    FM_SIGMOID = 1,    // σ(z) = 1 / (1 + e⁻ᶻ)
    FM_TANH = 2,       // σ(z) = tanh z
    FM_RELU = 3,       // σ(z) = max(z, 0), with relu(NaN) = NaN so that divergence stays visible
    FM_SOFTMAX = 4,    // σ(z)ⱼ = e^(zⱼ − max z) / Σₖ e^(zₖ − max z), row by row
    FM_EXP = 5,        // σ(z) = e^z (the output of a Poisson regression: a log link)
};

// fm_sbias_activation / fm_dbias_activation: Z := σ(Z + b)   (row-major)
//   Z is rows x cols, element (i, j) at Z[i*cols + j]; b holds cols values added to every row, or is
//   NULL for no bias. activation is one of the codes above; softmax normalises each row, the others
//   act elementwise. For finite input the output is finite: sigmoid of a large |z| is exactly 0 or 1,
//   tanh exactly ±1, and softmax is shifted by the row maximum (log-sum-exp), so e^x never overflows.
//   exp gives +∞ where e^z exceeds the largest finite number (as exp() does, but raising no flag).
//   A NaN input gives NaN (softmax: the whole row). An unknown code is treated as identity.
//   Accuracy against the exact function: float within a relative 1e-6, double 1e-14 (results below
//   the smallest normal number, about 1e-38 or 1e-308, may flush to 0).
void fm_sbias_activation(ptrdiff_t rows, ptrdiff_t cols, float *Z, const float *b, int activation);
void fm_dbias_activation(ptrdiff_t rows, ptrdiff_t cols, double *Z, const double *b, int activation);

// fm_sactivation_derivative / fm_dactivation_derivative: D := D ⊙ σ'(z), from the stored A = σ(z)
//   A and D hold size values each, and may not overlap. The derivative is read off the output:
//   sigmoid a(1 − a), tanh 1 − a², relu 1 where a > 0 and 0 elsewhere, exp a, identity 1. Softmax also leaves
//   D unchanged: it is only an output layer, whose delta comes from the loss with σ' already folded in.
void fm_sactivation_derivative(ptrdiff_t size, const float *A, float *D, int activation);
void fm_dactivation_derivative(ptrdiff_t size, const double *A, double *D, int activation);

// The instruction-set level the activations (and the update kernels, fm_update.h) chose at run time
// ("avx512", "avx2", "baseline").
const char *fm_activation_isa(void);


// ---------------------------------------------------------------------------------------------------
// Internals shared by fm_activations*.c, fm_update.c and csrc/test_activations.c, test_update.c; callers
// need none of it. Every elementwise kernel (these and fm_update.h's) is compiled once per level by the
// same files, fm_activations.c (baseline), fm_activations_avx2.c and fm_activations_avx512.c, and
// chosen through the same table of levels below.
//
// fm_?bias_activation_<level>, fm_?activation_derivative_<level>: the functions above, compiled for
// one instruction-set level (fm_activations_impl.h is their template).
#define FM_ACTIVATION_INTERNALS(x, REAL)                                                            \
    typedef void fm_##x##bias_activation_fn(ptrdiff_t rows, ptrdiff_t cols, REAL *Z, const REAL *b, \
                                            int activation);                                       \
    typedef void fm_##x##activation_derivative_fn(ptrdiff_t size, const REAL *A, REAL *D,           \
                                                  int activation);                                 \
    fm_##x##bias_activation_fn fm_##x##bias_activation_baseline, fm_##x##bias_activation_avx2,      \
        fm_##x##bias_activation_avx512;                                                            \
    fm_##x##activation_derivative_fn fm_##x##activation_derivative_baseline,                       \
        fm_##x##activation_derivative_avx2, fm_##x##activation_derivative_avx512;
FM_ACTIVATION_INTERNALS(s, float)
FM_ACTIVATION_INTERNALS(d, double)
#undef FM_ACTIVATION_INTERNALS

// One instruction-set level: its name (fm_cpu_runs(name), fm_isa.h, says whether this CPU runs it)
//   and its ten kernels: the four activations and the six update kernels (fm_update.h, whose per-level
//   functions fm_?update_<level>, ... are declared there).
typedef struct fm_activation_level {
    const char *name;
    fm_sbias_activation_fn *sbias_activation;
    fm_dbias_activation_fn *dbias_activation;
    fm_sactivation_derivative_fn *sactivation_derivative;
    fm_dactivation_derivative_fn *dactivation_derivative;
    fm_supdate_fn *supdate;
    fm_dupdate_fn *dupdate;
    fm_sadd_penalty_fn *sadd_penalty;
    fm_dadd_penalty_fn *dadd_penalty;
    fm_scolumn_sums_fn *scolumn_sums;
    fm_dcolumn_sums_fn *dcolumn_sums;
} fm_activation_level;

// fm_activation_levels: every level compiled into this binary, fastest first, ending with "baseline"
//   (which every CPU runs); *count receives how many there are.
const fm_activation_level *fm_activation_levels(int *count);

// fm_activation_level_current: the level the public functions (of fm_activations.h and fm_update.h) use: the fastest this CPU supports, or
//   the one named by the environment variable FASTMLP_ISA (avx512|avx2|baseline; "reference", which
//   only the GEMM has, means baseline), falling back to the next slower level when the CPU lacks it.
//   Chosen on the first call; safe to call from several threads.
const fm_activation_level *fm_activation_level_current(void);

#endif
