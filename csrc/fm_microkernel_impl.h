// fm_microkernel_impl.h: template of the register-blocked micro-kernel (see the contract in fm_gemm.h).
//
// Include after defining
//   FM_REAL  float or double          FM_VL  values per SIMD vector (16 bytes: 4 floats, 32: 8, 64: 16)
//   FM_MR    rows of the tile         FM_NV  vectors per row of the tile, so NR = FM_VL * FM_NV
//   FM_UKR   the function's name
// The file #undefs them at the end, so it can be included again for the other type. The instruction
// set comes from the including file (`#pragma GCC target("avx2,fma")`, ...): the same C source becomes
// an SSE2, an AVX2 or an AVX-512 kernel, written with GCC vector extensions rather than intrinsics.
//
// The MR x NV accumulator vectors live in registers through the whole k loop: each step loads one row
// of NR values of B and broadcasts MR values of A, and does MR * NV vector multiply-adds.

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif
#define FM_NR (FM_VL * FM_NV)
#define FM_VEC FM_CAT(FM_UKR, _vec)
typedef FM_REAL FM_VEC __attribute__((vector_size(FM_VL * sizeof(FM_REAL))));
// An unaligned view of C: tiles of C start anywhere.
typedef FM_REAL FM_CAT(FM_VEC, _u) __attribute__((vector_size(FM_VL * sizeof(FM_REAL)), aligned(sizeof(FM_REAL))));

// The k loop: acc += A * B, with row i of A at a + row[i] (step csa along k). Always inlined, so that
// the packed case (row[i] = i, csa = FM_MR: constants) gets its own copy with the simplest addressing.
static inline __attribute__((always_inline)) void
FM_CAT(FM_UKR, _loop)(ptrdiff_t k, const FM_REAL *restrict a, const ptrdiff_t row[FM_MR], ptrdiff_t csa,
                      const FM_REAL *restrict b, FM_VEC acc[FM_MR][FM_NV])
{
    for (ptrdiff_t p = 0; p < k; p++, a += csa, b += FM_NR) {
        FM_VEC b_row[FM_NV];
#pragma GCC unroll 8
        for (int v = 0; v < FM_NV; v++) b_row[v] = ((const FM_VEC *)b)[v];
#pragma GCC unroll 16
        for (int i = 0; i < FM_MR; i++) {
            const FM_REAL a_ip = a[row[i]];
#pragma GCC unroll 8
            for (int v = 0; v < FM_NV; v++) acc[i][v] += a_ip * b_row[v];
        }
    }
}

// The new value of one vector of C: alpha * acc + beta * c_old (c_old unused when beta == 0). The one
// expression for full vectors and for the partial ones at an edge.
static inline __attribute__((always_inline)) FM_VEC
FM_CAT(FM_UKR, _update)(FM_REAL alpha, FM_VEC acc, FM_REAL beta, FM_VEC c_old)
{
    return beta == 0 ? alpha * acc : alpha * acc + beta * c_old;
}

void FM_UKR(ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k, FM_REAL alpha, const FM_REAL *restrict a,
            ptrdiff_t rsa, ptrdiff_t csa, const FM_REAL *restrict b, FM_REAL beta, FM_REAL *restrict c,
            ptrdiff_t ldc)
{
    typedef FM_CAT(FM_VEC, _u) vec_u;
    FM_VEC acc[FM_MR][FM_NV];
    // Rows past m_e repeat the last row of A: A is read only where it exists, and their results are dropped.
    ptrdiff_t row[FM_MR], packed[FM_MR];
#pragma GCC unroll 16
    for (int i = 0; i < FM_MR; i++) {
        const int r = i < m_e ? i : (int)m_e - 1;
        row[i] = r * rsa, packed[i] = i;
        __builtin_prefetch(c + r * ldc, 1);
#pragma GCC unroll 8
        for (int v = 0; v < FM_NV; v++) acc[i][v] = (FM_VEC){0};
    }
    if (rsa == 1 && csa == FM_MR && m_e == FM_MR)
        FM_CAT(FM_UKR, _loop)(k, a, packed, FM_MR, b, acc);
    else
        FM_CAT(FM_UKR, _loop)(k, a, row, csa, b, acc);

    if (m_e == FM_MR && n_e == FM_NR) {   // a full tile
#pragma GCC unroll 16
        for (int i = 0; i < FM_MR; i++)
#pragma GCC unroll 8
            for (int v = 0; v < FM_NV; v++) {
                vec_u *c_iv = (vec_u *)(c + i * ldc + v * FM_VL);
                const FM_VEC c_old = beta == 0 ? (FM_VEC){0} : *c_iv;
                *c_iv = FM_CAT(FM_UKR, _update)(alpha, acc[i][v], beta, c_old);
            }
        return;
    }
    // An edge tile: only its m_e x n_e corner of C is read and written. (Loops over the lanes are
    // unrolled with a test per lane, so that the compiler does not call memcpy for a few values.)
    for (int i = 0; i < m_e; i++)
#pragma GCC unroll 8
        for (int v = 0; v < FM_NV; v++) {
            FM_REAL *c_iv = c + i * ldc + v * FM_VL;
            const ptrdiff_t lanes = n_e - v * FM_VL;
            FM_VEC c_old = {0};
            if (lanes >= FM_VL) {
                if (beta != 0) c_old = *(vec_u *)c_iv;
                *(vec_u *)c_iv = FM_CAT(FM_UKR, _update)(alpha, acc[i][v], beta, c_old);
            } else if (lanes > 0) {
#pragma GCC unroll 16
                for (int l = 0; l < FM_VL; l++)
                    if (l < lanes && beta != 0) c_old[l] = c_iv[l];
                const FM_VEC c_new = FM_CAT(FM_UKR, _update)(alpha, acc[i][v], beta, c_old);
#pragma GCC unroll 16
                for (int l = 0; l < FM_VL; l++)
                    if (l < lanes) c_iv[l] = c_new[l];
            }
        }
}

#undef FM_NR
#undef FM_VEC
#undef FM_REAL
#undef FM_VL
#undef FM_MR
#undef FM_NV
#undef FM_UKR
