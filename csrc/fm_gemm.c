// fm_gemm.c: PLACEHOLDER plain-loop GEMM (to be replaced by the blocked BLIS-style implementation).
#include "fm_gemm.h"

#define FM_DEFINE_GEMM(NAME, REAL)                                                              \
size_t NAME##_workspace_size(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads)               \
{ (void)m; (void)n; (void)k; (void)nthreads; return 1; }                                         \
int NAME(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, REAL alpha,                                     \
         const REAL *A, ptrdiff_t rsa, ptrdiff_t csa, const REAL *B, ptrdiff_t rsb, ptrdiff_t csb, \
         REAL beta, REAL *C, ptrdiff_t ldc, REAL *work, int nthreads)                            \
{                                                                                               \
    (void)work;                                                                                 \
    if (m < 0 || n < 0 || k < 0 || nthreads < 1) return FM_EINVAL;                              \
    for (ptrdiff_t i = 0; i < m; i++) {                                                         \
        REAL *c = C + i * ldc;                                                                  \
        for (ptrdiff_t j = 0; j < n; j++) c[j] = beta == 0 ? 0 : beta * c[j];                   \
        for (ptrdiff_t p = 0; p < k; p++) {                                                     \
            REAL a = alpha * A[i * rsa + p * csa];                                              \
            for (ptrdiff_t j = 0; j < n; j++) c[j] += a * B[p * rsb + j * csb];                 \
        }                                                                                       \
    }                                                                                           \
    return FM_OK;                                                                               \
}

FM_DEFINE_GEMM(fm_sgemm, float)
FM_DEFINE_GEMM(fm_dgemm, double)

const char *fm_gemm_isa(void) { return "reference"; }
