// fm_gemm.h: the general matrix product behind every dense layer.
//
// The three products of a dense layer, all row-major:
//   forward            Z  = A · W        (A is batch x n_in, W is n_in x n_out)
//   weight gradient    G  = Aᵀ · Δ       (Aᵀ is read through strides, never copied)
//   back-propagated    Δ' = Δ · Wᵀ
// A transpose is only a pair of swapped strides, so one routine serves all three.
#ifndef FM_GEMM_H
#define FM_GEMM_H

#include "fm_common.h"

// fm_sgemm / fm_dgemm: C := alpha * A * B + beta * C
//   A is m x k, element (i, p) at A[i*rsa + p*csa]; B is k x n, element (p, j) at B[p*rsb + j*csb];
//   C is m x n, row-major, element (i, j) at C[i*ldc + j].
//   work must hold fm_sgemm_workspace_size(m, n, k, nthreads) floats (fm_dgemm_...: doubles); it need
//   not be aligned. A, B and C must not overlap C. beta == 0: C is overwritten and never read (may hold NaN).
//   k == 0 gives C := beta * C. The result is bit-identical whatever nthreads is (>= 1).
//   Returns FM_OK, or FM_EINVAL if a dimension is negative or nthreads < 1.
size_t fm_sgemm_workspace_size(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads);
size_t fm_dgemm_workspace_size(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads);
int fm_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
             const float *A, ptrdiff_t rsa, ptrdiff_t csa,
             const float *B, ptrdiff_t rsb, ptrdiff_t csb,
             float beta, float *C, ptrdiff_t ldc, float *work, int nthreads);
int fm_dgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
             const double *A, ptrdiff_t rsa, ptrdiff_t csa,
             const double *B, ptrdiff_t rsb, ptrdiff_t csb,
             double beta, double *C, ptrdiff_t ldc, double *work, int nthreads);

// The instruction-set level the GEMM chose at run time ("avx512", "avx2", "baseline").
const char *fm_gemm_isa(void);

#endif
