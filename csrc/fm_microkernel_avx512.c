// fm_microkernel_avx512.c: the 12 x 32 (float) and 12 x 16 (double) micro-kernels, the narrow 12 x 16
// and 12 x 8 ones, and the float tail kernel (12 x 8, k4), for CPUs with AVX-512F (32 vector registers:
// 12 rows, see fm_microkernel_impl.h).
// Only this file is compiled for AVX-512; fm_gemm.c calls it only after checking the CPU (fm_microkernel.c).
#include "fm_isa.h"
#if FM_HAS_AVX512
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>

#include "fm_gemm.h"

// Masked loads and stores for the partial vector at the right edge of a tile: the first lanes lanes.
// With AVX-512 a masked load or store costs about what a plain one does, so a tile of fewer than 12 rows
// masks its last vector, whole or partial (FM_CHEAP_MASKS): one copy of each such tile instead of two.
#define FM_REAL float
#define FM_VL 16
#define FM_UKR fm_sukr_avx512
#define FM_WIDE_MR 12
#define FM_CHEAP_MASKS
#define FM_MASK_T __mmask16
#define FM_MASK(lanes) ((__mmask16)((1u << (lanes)) - 1))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm512_maskz_loadu_ps(mask, p))
#define FM_STORE_MASKED(p, mask, v) _mm512_mask_storeu_ps(p, mask, (__m512)(v))
#include "fm_microkernel_impl.h"

// fm_sukr_avx512_k4: the micro-kernel contract (fm_gemm.h) for a tile of at most 12 rows and 8 columns
// whose rows of A are read in place (csa == 1, no a_cols) and whose B is packed by fm_spack_k4: a vector
// holds 4 columns x 4 consecutive k values, so broadcasting 4 values of a row of A to each quarter fills
// every lane. It computes the last n mod 16 <= 8 columns of a product, where a kernel with one column a
// lane (AVX2's narrow one) would use 4 of its 8 lanes for a tail of 4. Element (i, j) adds four partial
// sums, over p = e, e + 4, ... (e = 0 .. 3), as (s0 + s2) + (s1 + s3): the same for any tile or thread.
static inline __attribute__((always_inline)) void
fm_sukr_avx512_k4_tile(const int MR_E, const int NV_E, ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k,
                       float alpha, const float *a, ptrdiff_t rsa, const int64_t *a_rows,
                       const float *b, ptrdiff_t rsb, float beta, float *c, ptrdiff_t ldc)
{
    __m512 acc[12][2];
    const float *row[12];
#pragma GCC unroll 12
    for (int i = 0; i < MR_E; i++) {   // rows past m_e repeat row 0; their sums are not stored
        const ptrdiff_t r = i < m_e ? i : 0;
        row[i] = a + (a_rows ? (ptrdiff_t)a_rows[r] : r) * rsa;
        acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    }
    const ptrdiff_t whole = k / 4 * 4;
    for (ptrdiff_t p = 0; p < whole; p += 4, b += rsb) {
        const __m512 b0 = _mm512_loadu_ps(b), b1 = NV_E == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < MR_E; i++) {
            const __m512 a_i = _mm512_broadcast_f32x4(_mm_loadu_ps(row[i] + p));
            acc[i][0] = _mm512_fmadd_ps(a_i, b0, acc[i][0]);
            if (NV_E == 2) acc[i][1] = _mm512_fmadd_ps(a_i, b1, acc[i][1]);
        }
    }
    if (whole < k) {   // the last k mod 4 values of each row, loaded masked (never past its end); B is 0 there
        const __m128i lanes = _mm_cmplt_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)(k - whole)));
        const __m512 b0 = _mm512_loadu_ps(b), b1 = NV_E == 2 ? _mm512_loadu_ps(b + 16) : b0;
#pragma GCC unroll 12
        for (int i = 0; i < MR_E; i++) {
            const __m512 a_i = _mm512_broadcast_f32x4(_mm_maskload_ps(row[i] + whole, lanes));
            acc[i][0] = _mm512_fmadd_ps(a_i, b0, acc[i][0]);
            if (NV_E == 2) acc[i][1] = _mm512_fmadd_ps(a_i, b1, acc[i][1]);
        }
    }
    // Four rows at a time: sum each quarter's 4 lanes, then put row t's 4 columns in quarter t.
    const __m512i by_row = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
#pragma GCC unroll 3
    for (int i0 = 0; i0 < MR_E; i0 += 4)
#pragma GCC unroll 2
        for (int v = 0; v < NV_E; v++) {
            const __m512 x = acc[i0][v], y = acc[i0 + 1][v], z = acc[i0 + 2][v], w = acc[i0 + 3][v];
            const __m512 xy = _mm512_add_ps(_mm512_shuffle_ps(x, y, 0x44), _mm512_shuffle_ps(x, y, 0xEE));
            const __m512 zw = _mm512_add_ps(_mm512_shuffle_ps(z, w, 0x44), _mm512_shuffle_ps(z, w, 0xEE));
            const __m512 sums = _mm512_add_ps(_mm512_shuffle_ps(xy, zw, 0x88), _mm512_shuffle_ps(xy, zw, 0xDD));
            float out[16] __attribute__((aligned(64)));
            _mm512_store_ps(out, _mm512_permutexvar_ps(by_row, sums));
            const ptrdiff_t cols = n_e - 4 * v < 4 ? n_e - 4 * v : 4;
            const __m128i mask = _mm_cmplt_epi32(_mm_setr_epi32(0, 1, 2, 3), _mm_set1_epi32((int)cols));
            for (int t = 0; t < 4 && i0 + t < m_e; t++) {
                float *c_t = c + (i0 + t) * ldc + 4 * v;
                __m128 value = _mm_mul_ps(_mm_set1_ps(alpha), _mm_load_ps(out + 4 * t));
                if (beta != 0)
                    value = _mm_add_ps(value, _mm_mul_ps(_mm_set1_ps(beta), _mm_maskload_ps(c_t, mask)));
                _mm_maskstore_ps(c_t, mask, value);
            }
        }
}

void fm_sukr_avx512_k4(ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k, float alpha, const float *restrict a,
                       ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows, ptrdiff_t next_rows,
                       const int64_t *a_cols, const float *restrict b, ptrdiff_t rsb, float beta,
                       float *restrict c, ptrdiff_t ldc)
{
    (void)csa, (void)next_rows, (void)a_cols;   // csa is 1 and there is no a_cols (the contract above)
#define FM_K4_TILE(MR_E, NV_E) \
    fm_sukr_avx512_k4_tile(MR_E, NV_E, m_e, n_e, k, alpha, a, rsa, a_rows, b, rsb, beta, c, ldc)
    if (n_e > 4) {
        if (m_e > 8) FM_K4_TILE(12, 2);
        else if (m_e > 4) FM_K4_TILE(8, 2);
        else FM_K4_TILE(4, 2);
    } else {
        if (m_e > 8) FM_K4_TILE(12, 1);
        else if (m_e > 4) FM_K4_TILE(8, 1);
        else FM_K4_TILE(4, 1);
    }
#undef FM_K4_TILE
}

#define FM_REAL double
#define FM_VL 8
#define FM_UKR fm_dukr_avx512
#define FM_WIDE_MR 12
#define FM_CHEAP_MASKS
#define FM_MASK_T __mmask8
#define FM_MASK(lanes) ((__mmask8)((1u << (lanes)) - 1))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm512_maskz_loadu_pd(mask, p))
#define FM_STORE_MASKED(p, mask, v) _mm512_mask_storeu_pd(p, mask, (__m512d)(v))
#include "fm_microkernel_impl.h"
#endif
