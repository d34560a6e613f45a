// fm_update.h: the elementwise steps after backpropagation: the bias gradient (column sums of δ), the
// penalty terms of the weight gradient, and the optimizer's update of a parameter array.
//
// Vectorised (SSE2, AVX2 + FMA or AVX-512, chosen at run time like the GEMM and the activations, see
// fm_isa.h). Every element is computed by the same vector code, the tail padded, so its result does not
// depend on where it sits in the array. (Fused multiply-adds make the last bit differ between levels.)
#ifndef FM_UPDATE_H
#define FM_UPDATE_H

#include <stddef.h>

// Optimizer codes, shared with fastmlp/_kernels.pyx (enum Optimizer).
enum {
    FM_SGD = 0,        // plain, or with classical momentum
    FM_NESTEROV = 1,   // Nesterov's momentum
    FM_ADAM = 2,
};

// One update step: its learning rate and the optimizer's constants. For Adam, correction1 and
// correction2 are 1 − β₁ᵗ and 1 − β₂ᵗ at step t. l2 != 0: the gradient is G + l2 · P, the L2
// penalty's term added as each value is read (a sparse layer's G holds only its data term).
typedef struct {
    int optimizer;
    double learning_rate, momentum, beta1, beta2, epsilon, correction1, correction2, l2;
} fm_step;

// fm_supdate / fm_dupdate: one optimizer step on the size parameters P with gradient G (G + l2 · P
//   when step->l2 != 0; below, G means that)
//   sgd        S1 == NULL: P −= η G;  else (momentum μ): S1 := μ S1 − η G,  P += S1;  G == NULL (with
//              momentum): S1 already holds μ S1 − η G, P += S1
//   nesterov   S1 := μ S1 − η G,  P += μ S1 − η G
//   adam       S1 := β₁ S1 + (1 − β₁) G,  S2 := β₂ S2 + (1 − β₂) G²,
//              P −= η (S1 / (1 − β₁ᵗ)) / (√(S2 / (1 − β₂ᵗ)) + ε)
//   S1 (velocity, or Adam's first moment) and S2 (Adam's second moment) hold size values each, or are
//   NULL where the optimizer needs none (nesterov and adam need S1, adam S2). No array may overlap another.
//   A new S1 or S2 value smaller in magnitude than the smallest normal number (FLT_MIN, DBL_MIN) is
//   stored, and used, as 0: state whose gradient stays 0 would otherwise decay into the subnormal
//   numbers and stay there, and arithmetic on them is many times slower on x86.
void fm_supdate(ptrdiff_t size, float *P, const float *G, float *S1, float *S2, const fm_step *step);
void fm_dupdate(ptrdiff_t size, double *P, const double *G, double *S1, double *S2, const fm_step *step);

// fm_sadd_penalty / fm_dadd_penalty: G := G + l2 · W + l1 · sign(W)
//   (the gradient of (l2/2)‖W‖² + l1 |W|₁; sign(0) = 0). G and W hold size values each; l2 == 0 and
//   l1 == 0 leave G untouched.
void fm_sadd_penalty(ptrdiff_t size, float *G, const float *W, float l2, float l1);
void fm_dadd_penalty(ptrdiff_t size, double *G, const double *W, double l2, double l1);

// fm_scolumn_sums / fm_dcolumn_sums: out := scale · Σᵢ D[i, :]   (the bias gradient: δ summed over the batch)
//   D is rows x cols, row-major (rows may be 0: out := 0); out holds cols values. The rows are added in
//   order, from row 0.
void fm_scolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const float *D, float *out, float scale);
void fm_dcolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const double *D, double *out, double scale);

// The instruction-set level the update kernels chose at run time ("avx512", "avx2", "baseline"): always
// the activations' (fm_activation_isa), as both use one table of levels.
const char *fm_update_isa(void);


// ---------------------------------------------------------------------------------------------------
// Internals shared by fm_activations*.c, fm_update.c and csrc/test_update.c; callers need none of it.
//
// fm_?update_<level>, fm_?add_penalty_<level>, fm_?column_sums_<level>: the functions above, compiled
// for one instruction-set level (fm_update_impl.h is their template, compiled by the activations'
// per-level files). The table of levels, with these kernels in it, and the choice of the current one are
// the activations': fm_activation_level, fm_activation_levels and fm_activation_level_current in
// fm_activations.h.
#define FM_UPDATE_INTERNALS(x, REAL)                                                                \
    typedef void fm_##x##update_fn(ptrdiff_t size, REAL *P, const REAL *G, REAL *S1, REAL *S2,        \
                                   const fm_step *step);                                           \
    typedef void fm_##x##add_penalty_fn(ptrdiff_t size, REAL *G, const REAL *W, REAL l2, REAL l1);     \
    typedef void fm_##x##column_sums_fn(ptrdiff_t rows, ptrdiff_t cols, const REAL *D, REAL *out,    \
                                        REAL scale);                                               \
    fm_##x##update_fn fm_##x##update_baseline, fm_##x##update_avx2, fm_##x##update_avx512;           \
    fm_##x##add_penalty_fn fm_##x##add_penalty_baseline, fm_##x##add_penalty_avx2,                   \
        fm_##x##add_penalty_avx512;                                                                \
    fm_##x##column_sums_fn fm_##x##column_sums_baseline, fm_##x##column_sums_avx2,                   \
        fm_##x##column_sums_avx512;
FM_UPDATE_INTERNALS(s, float)
FM_UPDATE_INTERNALS(d, double)
#undef FM_UPDATE_INTERNALS

#endif
