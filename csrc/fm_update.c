// fm_update.c: the update kernels every CPU runs, the table of instruction-set levels, and the public
// functions, which call the level chosen once at run time (as fm_activations.c does for the activations).
//
// Levels, fastest first (the faster kernels are in fm_update_avx512.c and fm_update_avx2.c):
//   avx512     16 floats, 8 doubles a vector    needs AVX-512F
//   avx2       8 floats, 4 doubles a vector     needs AVX2 and FMA
//   baseline   4 floats, 2 doubles a vector     16-byte vectors: SSE2 on any x86-64, NEON on arm64
#include <stdint.h>

#include "fm_isa.h"
#include "fm_update.h"

#define FM_LEVEL baseline
#define FM_VBYTES 16
#define FM_DOUBLE 0
#include "fm_update_impl.h"
#define FM_DOUBLE 1
#include "fm_update_impl.h"

#define FM_LEVEL_ENTRY(name)                                                                         \
    {#name, fm_supdate_##name, fm_dupdate_##name, fm_sadd_penalty_##name, fm_dadd_penalty_##name,     \
     fm_scolumn_sums_##name, fm_dcolumn_sums_##name}
static const fm_update_level levels[] = {
#if defined(__x86_64__) || defined(__i386__)
    FM_LEVEL_ENTRY(avx512),
    FM_LEVEL_ENTRY(avx2),
#endif
    FM_LEVEL_ENTRY(baseline),
};
#undef FM_LEVEL_ENTRY
enum { n_levels = sizeof levels / sizeof levels[0] };

// fm_update_levels: every compiled level, fastest first (contract in fm_update.h).
const fm_update_level *fm_update_levels(int *count)
{
    *count = n_levels;
    return levels;
}

// fm_update_level_current: chosen once by fm_isa_choose's rule (contract in fm_update.h).
const fm_update_level *fm_update_level_current(void)
{
    static int chosen = -1;
    int index = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (index < 0) {   // threads racing through the first call all compute the same answer
        const char *names[n_levels];
        for (int i = 0; i < n_levels; i++) names[i] = levels[i].name;
        index = fm_isa_choose(names, n_levels);
        __atomic_store_n(&chosen, index, __ATOMIC_RELEASE);
    }
    return &levels[index];
}

const char *fm_update_isa(void) { return fm_update_level_current()->name; }

// The public functions (contracts in fm_update.h) call the current level's kernel.
void fm_supdate(ptrdiff_t size, float *P, const float *G, float *S1, float *S2, const fm_step *step)
{
    fm_update_level_current()->supdate(size, P, G, S1, S2, step);
}
void fm_dupdate(ptrdiff_t size, double *P, const double *G, double *S1, double *S2, const fm_step *step)
{
    fm_update_level_current()->dupdate(size, P, G, S1, S2, step);
}
void fm_sadd_penalty(ptrdiff_t size, float *G, const float *W, float l2, float l1)
{
    fm_update_level_current()->sadd_penalty(size, G, W, l2, l1);
}
void fm_dadd_penalty(ptrdiff_t size, double *G, const double *W, double l2, double l1)
{
    fm_update_level_current()->dadd_penalty(size, G, W, l2, l1);
}
void fm_scolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const float *D, float *out, float scale)
{
    fm_update_level_current()->scolumn_sums(rows, cols, D, out, scale);
}
void fm_dcolumn_sums(ptrdiff_t rows, ptrdiff_t cols, const double *D, double *out, double scale)
{
    fm_update_level_current()->dcolumn_sums(rows, cols, D, out, scale);
}
