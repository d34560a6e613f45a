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
#define FM_VEC FM_CAT(FM_UKR, _vec)
typedef FM_REAL FM_VEC __attribute__((vector_size(FM_VL * sizeof(FM_REAL))));

// The k loop, always inlined so that the packed case (rsa = 1, csa = FM_MR, constants) gets its own
// copy with simple addressing.
static inline __attribute__((always_inline)) void
FM_CAT(FM_UKR, _loop)(ptrdiff_t k, const FM_REAL *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
                      const FM_REAL *restrict b, FM_VEC acc[FM_MR][FM_NV])
{
    for (ptrdiff_t p = 0; p < k; p++, a += csa, b += FM_VL * FM_NV) {
        FM_VEC b_row[FM_NV];
#pragma GCC unroll 8
        for (int v = 0; v < FM_NV; v++) b_row[v] = ((const FM_VEC *)b)[v];
#pragma GCC unroll 16
        for (int i = 0; i < FM_MR; i++) {
            const FM_REAL a_ip = a[i * rsa];
#pragma GCC unroll 8
            for (int v = 0; v < FM_NV; v++) acc[i][v] += a_ip * b_row[v];
        }
    }
}

void FM_UKR(ptrdiff_t k, FM_REAL alpha, const FM_REAL *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
            const FM_REAL *restrict b, FM_REAL beta, FM_REAL *restrict c, ptrdiff_t ldc)
{
    // An unaligned view of C: tiles of C start anywhere.
    typedef FM_REAL vec_u __attribute__((vector_size(FM_VL * sizeof(FM_REAL)), aligned(sizeof(FM_REAL))));
    FM_VEC acc[FM_MR][FM_NV];
#pragma GCC unroll 16
    for (int i = 0; i < FM_MR; i++) {
        __builtin_prefetch(c + i * ldc, 1);
#pragma GCC unroll 8
        for (int v = 0; v < FM_NV; v++) acc[i][v] = (FM_VEC){0};
    }
    if (rsa == 1 && csa == FM_MR)
        FM_CAT(FM_UKR, _loop)(k, a, 1, FM_MR, b, acc);
    else
        FM_CAT(FM_UKR, _loop)(k, a, rsa, csa, b, acc);

    if (beta == 0) {
#pragma GCC unroll 16
        for (int i = 0; i < FM_MR; i++)
#pragma GCC unroll 8
            for (int v = 0; v < FM_NV; v++) *(vec_u *)(c + i * ldc + v * FM_VL) = alpha * acc[i][v];
    } else {
#pragma GCC unroll 16
        for (int i = 0; i < FM_MR; i++)
#pragma GCC unroll 8
            for (int v = 0; v < FM_NV; v++) {
                vec_u *c_iv = (vec_u *)(c + i * ldc + v * FM_VL);
                *c_iv = alpha * acc[i][v] + beta * *c_iv;
            }
    }
}

#undef FM_VEC
#undef FM_REAL
#undef FM_VL
#undef FM_MR
#undef FM_NV
#undef FM_UKR
