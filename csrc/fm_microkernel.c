// fm_microkernel.c: the reference micro-kernels (plain loops), and the table of instruction-set levels.
//
// Levels, fastest first (each level's kernels are in fm_microkernel_<level>.c):
//   avx512    12 x 32 float, 12 x 16 double  needs AVX-512F
//   avx2       6 x 16 float, 6 x 8 double     needs AVX2 and FMA
//   baseline   6 x 8 float,  6 x 4 double     16-byte vectors: SSE2 on any x86-64, NEON on arm64
//   reference  6 x 8 float,  6 x 4 double     plain loops, the spec the vector kernels are tested against
// Each vector level also has a narrow kernel, 12 rows x 1 vector (avx512: 12 x 16 float, 12 x 8
// double), for products at most one vector wide (fm_microkernel_impl.h says why).
#include "fm_gemm.h"
#include "fm_isa.h"

// fm_?ukr_ref: C := alpha * A * B + beta * C for the m_e x n_e corner of an FM_REF_MR x NR tile
//   (contract in fm_gemm.h), in plain loops.
#define FM_REF_MR 6
#define FM_DEFINE_UKR_REF(NAME, REAL)                                                              \
    void NAME(ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k, REAL alpha, const REAL *a, ptrdiff_t rsa,  \
              ptrdiff_t csa, const int64_t *a_rows, ptrdiff_t next_rows, const int64_t *a_cols,    \
              const REAL *b, ptrdiff_t rsb, REAL beta, REAL *c, ptrdiff_t ldc)                     \
    {                                                                                              \
        (void)next_rows; /* a hint only */                                                         \
        for (ptrdiff_t i = 0; i < m_e; i++)                                                        \
            for (ptrdiff_t j = 0; j < n_e; j++) {                                                  \
                const ptrdiff_t r = a_rows ? a_rows[i] : i;                                        \
                REAL sum = 0;                                                                      \
                for (ptrdiff_t p = 0; p < k; p++)                                                  \
                    sum += a[r * rsa + (a_cols ? a_cols[p] : p) * csa] * b[p * rsb + j];           \
                c[i * ldc + j] = beta == 0 ? alpha * sum : alpha * sum + beta * c[i * ldc + j];   \
            }                                                                                      \
    }
FM_DEFINE_UKR_REF(fm_sukr_ref, float)
FM_DEFINE_UKR_REF(fm_dukr_ref, double)

// Each level: {name, float wide, narrow, half, double wide, narrow, half, float tail, double tail}.
#define KERNEL(mr, nr, fn) {mr, nr, fn, 0}
#define K4_KERNEL(mr, nr, fn) {mr, nr, fn, 1}
#define NONE {0, 0, NULL, 0}
static const fm_gemm_level levels[] = {
#if FM_HAS_AVX512 && FM_HAS_AVX2   // every AVX-512 CPU has AVX2 and FMA
    {"avx512", KERNEL(12, 32, fm_sukr_avx512), KERNEL(12, 16, fm_sukr_avx512_narrow), KERNEL(12, 8, fm_sukr_avx2_narrow),
               KERNEL(12, 16, fm_dukr_avx512), KERNEL(12, 8, fm_dukr_avx512_narrow), KERNEL(12, 4, fm_dukr_avx2_narrow),
               K4_KERNEL(12, 8, fm_sukr_avx512_k4), NONE},
#elif FM_HAS_AVX512
    {"avx512", KERNEL(12, 32, fm_sukr_avx512), KERNEL(12, 16, fm_sukr_avx512_narrow), NONE,
               KERNEL(12, 16, fm_dukr_avx512), KERNEL(12, 8, fm_dukr_avx512_narrow), NONE, NONE, NONE},
#endif
#if FM_HAS_AVX2
    {"avx2", KERNEL(6, 16, fm_sukr_avx2), KERNEL(12, 8, fm_sukr_avx2_narrow), NONE,
             KERNEL(6, 8, fm_dukr_avx2), KERNEL(12, 4, fm_dukr_avx2_narrow), NONE, NONE, NONE},
#endif
    {"baseline", KERNEL(6, 8, fm_sukr_baseline), KERNEL(12, 4, fm_sukr_baseline_narrow), NONE,
                 KERNEL(6, 4, fm_dukr_baseline), KERNEL(12, 2, fm_dukr_baseline_narrow), NONE, NONE, NONE},
    {"reference", KERNEL(FM_REF_MR, 8, fm_sukr_ref), KERNEL(FM_REF_MR, 8, fm_sukr_ref), NONE,
                  KERNEL(FM_REF_MR, 4, fm_dukr_ref), KERNEL(FM_REF_MR, 4, fm_dukr_ref), NONE, NONE, NONE},
};
#undef KERNEL
#undef K4_KERNEL
#undef NONE
enum { n_levels = sizeof levels / sizeof levels[0] };

// fm_gemm_levels: every compiled level, fastest first (contract in fm_gemm.h).
const fm_gemm_level *fm_gemm_levels(int *count)
{
    *count = n_levels;
    return levels;
}

// The level named by FASTMLP_ISA if this CPU runs it, else the next slower one it runs; with the
// variable unset or unknown, the fastest one it runs (the rule is fm_isa_choose's, in fm_isa.c).
static const fm_gemm_level *choose_level(void)
{
    const char *names[n_levels];
    for (int i = 0; i < n_levels; i++) names[i] = levels[i].name;
    return &levels[fm_isa_choose(names, n_levels)];
}

// fm_gemm_level_current: chosen once (contract in fm_gemm.h). Threads racing through the first call
// all compute the same answer, so an atomic pointer is all the locking needed.
const fm_gemm_level *fm_gemm_level_current(void)
{
    static const fm_gemm_level *current = NULL;
    const fm_gemm_level *level = __atomic_load_n(&current, __ATOMIC_ACQUIRE);
    if (level == NULL) {
        level = choose_level();
        __atomic_store_n(&current, level, __ATOMIC_RELEASE);
    }
    return level;
}
