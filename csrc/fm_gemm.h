// fm_gemm.h: the general matrix product behind every dense layer.
//
// The three products of a dense layer, all row-major:
//   forward            Z  = A · W        (A is batch x n_in, W is n_in x n_out)
//   weight gradient    G  = Aᵀ · Δ       (Aᵀ is read through strides, never copied)
//   back-propagated    Δ' = Δ · Wᵀ
// A transpose is only a pair of swapped strides, so one routine serves all three.
#ifndef FM_GEMM_H
#define FM_GEMM_H

#include <stdint.h>

#include "fm_common.h"

// fm_sgemm / fm_dgemm: C := alpha * A * B + beta * C
//   A is m x k, element (i, p) at A[r(i)*rsa + c(p)*csa], with r(i) = a_rows[i] (or i if a_rows is
//   NULL) and c(p) = a_cols[p] (or p), at most one of them an index: a_rows picks a mini-batch's rows
//   out of a data set, a_cols the same rows of its transpose, so that the batch is read where it lies,
//   never gathered first.
//   B is k x n, element (p, j) at B[p*rsb + j*csb]; C is m x n, row-major, element (i, j) at C[i*ldc + j].
//   work must hold fm_sgemm_workspace_size(m, n, k, nthreads) floats (fm_dgemm_...: doubles); it need
//   not be aligned. A, B and C must not overlap C. beta == 0: C is overwritten and never read (may hold NaN).
//   k == 0 gives C := beta * C. The result is bit-identical whatever nthreads is (>= 1).
//   Returns FM_OK, or FM_EINVAL if a dimension is negative, nthreads < 1 or both indexes are given.
size_t fm_sgemm_workspace_size(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads);
size_t fm_dgemm_workspace_size(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads);
int fm_sgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
             const float *A, ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows, const int64_t *a_cols,
             const float *B, ptrdiff_t rsb, ptrdiff_t csb,
             float beta, float *C, ptrdiff_t ldc, float *work, int nthreads);
int fm_dgemm(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
             const double *A, ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows, const int64_t *a_cols,
             const double *B, ptrdiff_t rsb, ptrdiff_t csb,
             double beta, double *C, ptrdiff_t ldc, double *work, int nthreads);

// fm_sgemm_team / fm_dgemm_team: fm_?gemm shared by the `count` threads of a team (fm_team.h),
//   every thread making the same call with its own id, 0 <= id < count. Thread id computes
//   one tile of C, given in *tile (empty, rows == 0, when it has no share), and returns without waiting
//   for the others: the caller synchronises (a barrier) before C is read. Products too small to pay for
//   splitting go to thread 0 alone; whole_rows != 0 keeps every tile as wide as C (for a row softmax).
//   work is this thread's own workspace, fm_?gemm_workspace_size(m, n, k, 1) values. The result is
//   bit-identical to fm_?gemm's, whatever count is. Returns FM_OK, or FM_EINVAL (bad dimension, id or
//   count; *tile is then empty).
typedef struct { ptrdiff_t row, rows, col, cols; } fm_tile;
int fm_sgemm_team(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, float alpha,
                  const float *A, ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows,
                  const int64_t *a_cols, const float *B, ptrdiff_t rsb, ptrdiff_t csb, float beta,
                  float *C, ptrdiff_t ldc, float *work, int whole_rows, int id, int count, fm_tile *tile);
int fm_dgemm_team(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, double alpha,
                  const double *A, ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows,
                  const int64_t *a_cols, const double *B, ptrdiff_t rsb, ptrdiff_t csb, double beta,
                  double *C, ptrdiff_t ldc, double *work, int whole_rows, int id, int count,
                  fm_tile *tile);

// The instruction-set level the GEMM chose at run time ("avx512", "avx2", "baseline").
const char *fm_gemm_isa(void);


// ---------------------------------------------------------------------------------------------------
// Internals shared by fm_gemm.c, fm_pack.c, fm_microkernel*.c and csrc/test_csrc.c; callers need none of it.
//
// Micro-kernel fm_?ukr_<level>, and fm_?ukr_<level>_narrow with MR = 12 and NR = one vector:
//   one MR x NR tile of C,  C := alpha * A * B + beta * C
//   on the m_e x n_e corner of the tile (1 <= m_e <= MR, 1 <= n_e <= NR, k >= 1; the edges of C).
//   A is m_e x k, element (i, p) at a[r(i)*rsa + c(p)*csa] (r and c as for fm_?gemm, through a_rows
//   and a_cols): either a packed micro-panel (rsa = 1, csa = MR, no a_rows or a_cols) or the caller's
//   A read in place (with a_cols, only rsa = 1). With a_rows, next_rows > 0 says that a_rows[m_e .. m_e + next_rows - 1] are the
//   rows of the next tile (at most MR), which the kernel may request from memory while it works; it
//   reads none of their values. B is k x n_e, element (p, j) at b[p*rsb + j]: either a packed micro-panel
//   (rsb = NR) or rows of the caller's B read in place; only those k x n_e values are read, any
//   alignment. C has element (i, j) at c[i*ldc + j], any alignment; only the m_e x n_e
//   corner is read or written, and beta == 0: C is not read. Element (i, j) of C gets the same value
//   for any m_e, n_e, alignment or packing (the same sum, in the same order).
// fm_?pack: copy the m x k matrix X, element (i, p) at X[r(i)*rs + c(p)*cs] (r(i) = rows[i] or i if
//   rows is NULL, c(p) = cols[p] or p), into ceil(m / w) micro-panels of w rows: micro-panel q holds
//   rows q*w .. q*w + w-1 column by column, element (i, p) at dst[q*w*k + p*w + i % w]; rows past m
//   are zero. Packs A with w = MR, and Bᵀ (rs = csb, cs = rsb)
//   with w = NR.
// fm_?gemm_at_level: fm_?gemm with the micro-kernel of the given level (the tests compare every level).
struct fm_gemm_level;
#define FM_GEMM_INTERNALS(x, REAL)                                                                  \
    typedef void fm_##x##ukr_fn(ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k, REAL alpha, const REAL *a,  \
                                ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows,               \
                                ptrdiff_t next_rows, const int64_t *a_cols, const REAL *b,          \
                                ptrdiff_t rsb, REAL beta, REAL *c, ptrdiff_t ldc);                  \
    typedef struct { int mr, nr; fm_##x##ukr_fn *fn; int k4; } fm_##x##ukr;                         \
    fm_##x##ukr_fn fm_##x##ukr_ref, fm_##x##ukr_baseline, fm_##x##ukr_avx2, fm_##x##ukr_avx512;     \
    fm_##x##ukr_fn fm_##x##ukr_baseline_narrow, fm_##x##ukr_avx2_narrow, fm_##x##ukr_avx512_narrow; \
    void fm_##x##pack(ptrdiff_t m, ptrdiff_t k, const REAL *X, ptrdiff_t rs, ptrdiff_t cs,          \
                      const int64_t *rows, const int64_t *cols, int w, REAL *dst);                  \
    void fm_##x##pack_k4(ptrdiff_t n_t, ptrdiff_t k, const REAL *X, ptrdiff_t rs, ptrdiff_t cs,     \
                         ptrdiff_t w, REAL *dst);                                                  \
    int fm_##x##gemm_at_level(const struct fm_gemm_level *level, ptrdiff_t m, ptrdiff_t n,          \
                              ptrdiff_t k, REAL alpha, const REAL *A, ptrdiff_t rsa, ptrdiff_t csa, \
                              const int64_t *a_rows, const int64_t *a_cols, const REAL *B,          \
                              ptrdiff_t rsb, ptrdiff_t csb, REAL beta, REAL *C, ptrdiff_t ldc,       \
                              REAL *work, int nthreads);
FM_GEMM_INTERNALS(s, float)
FM_GEMM_INTERNALS(d, double)
#undef FM_GEMM_INTERNALS
// fm_?pack_k4: the n_t x k matrix X (element (j, p) at X[j*rs + p*cs]: the last columns of B, transposed)
//   for a k4 kernel, in w columns (n_t <= w, w a multiple of 4): groups of 4 consecutive p, 4 * w values
//   each, element (j, p) at dst[p / 4 * 4 * w + j * 4 + p % 4]; zeros past n_t and past k (up to a
//   multiple of 4). A kernel with k4 set reads B packed so, and A in place along its rows (csa == 1, no
//   a_cols): AVX-512's float tail kernel, fm_sukr_avx512_k4.
fm_sukr_fn fm_sukr_avx512_k4;

// One instruction-set level: its name (fm_cpu_runs(name), fm_isa.h, says whether this CPU runs it)
//   and its micro-kernels, for float (s) and double (d): a wide one, and a narrow one (more rows, one
//   vector wide) for products with n <= s_narrow.nr (d_narrow.nr); fm_?gemm picks by n. A level may
//   also have a half kernel (fn NULL where not), half as wide as the narrow one, for the last n mod
//   s_narrow.nr columns when there are at most s_half.nr of them: AVX-512's is AVX2's narrow kernel,
//   which adds the same products in the same order with half the multiply-adds (the same bits with
//   alpha 1 and beta 0, as in inference; else alpha * sum + beta * c may be fused differently).
//   A level may also have a tail kernel (fn NULL where not) that takes those columns instead when A
//   is read along its rows (csa == 1, no a_cols): AVX-512's in float, a k4 kernel that fills every lane.
typedef struct fm_gemm_level {
    const char *name;
    fm_sukr s, s_narrow, s_half;
    fm_dukr d, d_narrow, d_half;
    fm_sukr s_tail;
    fm_dukr d_tail;
} fm_gemm_level;

// fm_gemm_levels: every level compiled into this binary, fastest first, ending with "reference"
//   (plain loops); *count receives how many there are.
const fm_gemm_level *fm_gemm_levels(int *count);

// fm_gemm_level_current: the level fm_?gemm uses: the fastest this CPU supports, or the one named by
//   the environment variable FASTMLP_ISA (avx512|avx2|baseline|reference), falling back to the next
//   slower level when the CPU lacks it. Chosen on the first call; safe to call from several threads.
const fm_gemm_level *fm_gemm_level_current(void);

#endif
