// fm_activations.c: the elementwise kernels every CPU runs (the activations, and through
// fm_activations_impl.h the update kernels of fm_update.h), the one table of instruction-set levels for
// both, and the activations' public functions, which call the level chosen once at run time (fm_update.c
// holds the update kernels' public functions, which call the same level).
//
// Levels, fastest first (the faster kernels are in fm_activations_avx512.c and fm_activations_avx2.c):
//   avx512     16 floats, 8 doubles a vector    needs AVX-512F
//   avx2       8 floats, 4 doubles a vector     needs AVX2 and FMA
//   baseline   4 floats, 2 doubles a vector     16-byte vectors: SSE2 on any x86-64, NEON on arm64
// The GEMM has the same levels (fm_microkernel.c) and reads the same FASTMLP_ISA; the CPU detection and
// the FASTMLP_ISA rule both use are in fm_isa.c.
#include "fm_activations.h"
#include "fm_isa.h"
#if defined(__x86_64__)
#include <immintrin.h>   // the update kernels' vector square root (fm_update_impl.h)
#endif

#define FM_LEVEL baseline
#define FM_VBYTES 16
#define FM_DOUBLE 0
#include "fm_activations_impl.h"
#define FM_DOUBLE 1
#include "fm_activations_impl.h"

#define FM_LEVEL_ENTRY(name)                                                                         \
    {#name, fm_sbias_activation_##name, fm_dbias_activation_##name, fm_sactivation_derivative_##name, \
     fm_dactivation_derivative_##name, fm_supdate_##name, fm_dupdate_##name, fm_sadd_penalty_##name,   \
     fm_dadd_penalty_##name, fm_scolumn_sums_##name, fm_dcolumn_sums_##name}
static const fm_activation_level levels[] = {
#if FM_HAS_AVX512
    FM_LEVEL_ENTRY(avx512),
#endif
#if FM_HAS_AVX2
    FM_LEVEL_ENTRY(avx2),
#endif
    FM_LEVEL_ENTRY(baseline),
};
#undef FM_LEVEL_ENTRY
enum { n_levels = sizeof levels / sizeof levels[0] };

// fm_activation_levels: every compiled level, fastest first (contract in fm_activations.h).
const fm_activation_level *fm_activation_levels(int *count)
{
    *count = n_levels;
    return levels;
}

// The fastest level this CPU runs, starting from the one FASTMLP_ISA names ("reference" is the GEMM's
// plain-loop level: here the slowest, baseline). Unset or unknown: start from the fastest. The rule is
// fm_isa_choose's (fm_isa.c), shared with the GEMM.
static const fm_activation_level *level_for_this_cpu(void)
{
    const char *names[n_levels];
    for (int i = 0; i < n_levels; i++) names[i] = levels[i].name;
    return &levels[fm_isa_choose(names, n_levels)];
}

// fm_activation_level_current: chosen once (contract in fm_activations.h). Threads racing through the
// first call all compute the same answer, so an atomic pointer is all the locking needed.
const fm_activation_level *fm_activation_level_current(void)
{
    static const fm_activation_level *current = NULL;
    const fm_activation_level *level = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (level == NULL) {
        level = level_for_this_cpu();
        __atomic_store_n(&current, level, __ATOMIC_RELEASE);
    }
    return level;
}

const char *fm_activation_isa(void) { return fm_activation_level_current()->name; }

// The public functions (contracts in fm_activations.h) call the current level's kernel.
void fm_sbias_activation(ptrdiff_t rows, ptrdiff_t cols, float *Z, const float *b, int activation)
{
    fm_activation_level_current()->sbias_activation(rows, cols, Z, b, activation);
}
void fm_dbias_activation(ptrdiff_t rows, ptrdiff_t cols, double *Z, const double *b, int activation)
{
    fm_activation_level_current()->dbias_activation(rows, cols, Z, b, activation);
}
void fm_sactivation_derivative(ptrdiff_t size, const float *A, float *D, int activation)
{
    fm_activation_level_current()->sactivation_derivative(size, A, D, activation);
}
void fm_dactivation_derivative(ptrdiff_t size, const double *A, double *D, int activation)
{
    fm_activation_level_current()->dactivation_derivative(size, A, D, activation);
}
