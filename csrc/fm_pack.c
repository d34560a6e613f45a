// fm_pack.c: packing of A and B into micro-panels for the GEMM in fm_gemm.c (see fm_pack_impl.h).
#include "fm_gemm.h"
#ifdef __SSE2__
#include <emmintrin.h>
#endif

// The small transposes of the packing, y[p*ldy + i] = x[i*ldx + p]: 4 x 4 floats or 2 x 2 doubles in
// SSE2 registers (every x86-64 CPU has SSE2), plain loops elsewhere.
static inline void transpose_4x4_float(const float *x, ptrdiff_t ldx, float *y, ptrdiff_t ldy)
{
#ifdef __SSE2__
    __m128 r0 = _mm_loadu_ps(x), r1 = _mm_loadu_ps(x + ldx), r2 = _mm_loadu_ps(x + 2 * ldx),
           r3 = _mm_loadu_ps(x + 3 * ldx);
    _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
    _mm_storeu_ps(y, r0), _mm_storeu_ps(y + ldy, r1), _mm_storeu_ps(y + 2 * ldy, r2), _mm_storeu_ps(y + 3 * ldy, r3);
#else
    for (int i = 0; i < 4; i++)
        for (int p = 0; p < 4; p++) y[p * ldy + i] = x[i * ldx + p];
#endif
}

static inline void transpose_2x2_double(const double *x, ptrdiff_t ldx, double *y, ptrdiff_t ldy)
{
#ifdef __SSE2__
    const __m128d r0 = _mm_loadu_pd(x), r1 = _mm_loadu_pd(x + ldx);
    _mm_storeu_pd(y, _mm_unpacklo_pd(r0, r1)), _mm_storeu_pd(y + ldy, _mm_unpackhi_pd(r0, r1));
#else
    y[0] = x[0], y[1] = x[ldx], y[ldy] = x[1], y[ldy + 1] = x[ldx + 1];
#endif
}

#define FM_REAL float
#define FM_PACK fm_spack
#define FM_TRANSPOSE transpose_4x4_float
#define FM_TB 4
#include "fm_pack_impl.h"

#define FM_REAL double
#define FM_PACK fm_dpack
#define FM_TRANSPOSE transpose_2x2_double
#define FM_TB 2
#include "fm_pack_impl.h"
