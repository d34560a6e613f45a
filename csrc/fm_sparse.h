// fm_sparse.h: the first layer of a network whose input is a sparse matrix: the products of the rows
// of a CSR matrix with dense matrices, in time proportional to the nonzeros.
//
// A CSR matrix X of n_rows rows: row r's nonzeros are X[r, indices[p]] = data[p] for p = indptr[r] ..
// indptr[r + 1] - 1. indices and indptr are both int32_t (functions ending _i32) or both int64_t (_i64).
// A mini-batch is a list of rows of X, `rows` (int64_t), read where they lie in X; rows == NULL means
// rows 0 .. m - 1. The dense matrices are row-major with a row stride (ldw, ldz, ldd, ldg, in elements),
// so that a block of columns of a wider matrix is a matrix too.
//
// Vectorised over the dense rows (SSE2, AVX2 + FMA or AVX-512, chosen once at run time with the
// activations' rule, fm_isa.h); the nonzeros are added in their order, so a result does not depend on
// threads. Fused multiply-adds make the last bit differ between levels.
#ifndef FM_SPARSE_H
#define FM_SPARSE_H

#include <stddef.h>
#include <stdint.h>

// What fm_csr_check finds, worst first; only FM_OK and FM_CSR_UNSORTED are safe for the products.
enum {
    FM_CSR_BAD_INDPTR = 3,   // indptr[0] != 0, indptr decreases, or indptr[n_rows] > nnz
    FM_CSR_BAD_INDEX = 2,    // a column index < 0 or >= n_cols
    FM_CSR_UNSORTED = 1,     // a row's indices are not strictly increasing: unsorted, or a duplicate
};

// fm_csr_check_i32 / fm_csr_check_i64: whether indptr (n_rows + 1 values) and indices describe a CSR
//   matrix of n_cols columns whose nonzeros lie in the first nnz values of data and indices.
//   Returns FM_CSR_BAD_INDPTR, else FM_CSR_BAD_INDEX, else FM_CSR_UNSORTED, else FM_OK (0). Reads
//   indptr, then only the nonzeros indptr[0] .. indptr[n_rows] - 1 of indices.
int fm_csr_check_i32(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t nnz, const int32_t *indptr,
                     const int32_t *indices);
int fm_csr_check_i64(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t nnz, const int64_t *indptr,
                     const int64_t *indices);

// fm_scsr_mm_i32 (and _i64, and fm_dcsr_mm_*: double): Z := X[rows] · W
//   Z[i, :] = Σ_p data[p] · W[indices[p], :] over the nonzeros p of row rows[i] (or i) of X, i = 0..m-1.
//   W has a row for every column of X and n columns; Z is m x n, overwritten and never read (an empty
//   row of X gives a row of zeros). X must pass fm_csr_check (FM_OK or FM_CSR_UNSORTED) for W's rows,
//   and rows must name rows of X. Z must not overlap W.
void fm_scsr_mm_i32(ptrdiff_t m, ptrdiff_t n, const float *data, const int32_t *indices,
                    const int32_t *indptr, const int64_t *rows, const float *W, ptrdiff_t ldw,
                    float *Z, ptrdiff_t ldz);
void fm_scsr_mm_i64(ptrdiff_t m, ptrdiff_t n, const float *data, const int64_t *indices,
                    const int64_t *indptr, const int64_t *rows, const float *W, ptrdiff_t ldw,
                    float *Z, ptrdiff_t ldz);
void fm_dcsr_mm_i32(ptrdiff_t m, ptrdiff_t n, const double *data, const int32_t *indices,
                    const int32_t *indptr, const int64_t *rows, const double *W, ptrdiff_t ldw,
                    double *Z, ptrdiff_t ldz);
void fm_dcsr_mm_i64(ptrdiff_t m, ptrdiff_t n, const double *data, const int64_t *indices,
                    const int64_t *indptr, const int64_t *rows, const double *W, ptrdiff_t ldw,
                    double *Z, ptrdiff_t ldz);

// fm_scsr_tmm_add_i32 (and _i64, fm_dcsr_tmm_add_*): G := G + alpha · X[rows]ᵀ · D
//   Every nonzero x = X[rows[i], k] adds alpha · x · D[i, :] to G[k, :], row i = 0..m-1 after row,
//   and within a row in the order of its nonzeros; rows of G where X[rows] has no nonzero are not
//   touched. D is m x n, G has a row for every column of X and n columns. X and rows as for
//   fm_scsr_mm; G must not overlap D.
void fm_scsr_tmm_add_i32(ptrdiff_t m, ptrdiff_t n, float alpha, const float *data,
                         const int32_t *indices, const int32_t *indptr, const int64_t *rows,
                         const float *D, ptrdiff_t ldd, float *G, ptrdiff_t ldg);
void fm_scsr_tmm_add_i64(ptrdiff_t m, ptrdiff_t n, float alpha, const float *data,
                         const int64_t *indices, const int64_t *indptr, const int64_t *rows,
                         const float *D, ptrdiff_t ldd, float *G, ptrdiff_t ldg);
void fm_dcsr_tmm_add_i32(ptrdiff_t m, ptrdiff_t n, double alpha, const double *data,
                         const int32_t *indices, const int32_t *indptr, const int64_t *rows,
                         const double *D, ptrdiff_t ldd, double *G, ptrdiff_t ldg);
void fm_dcsr_tmm_add_i64(ptrdiff_t m, ptrdiff_t n, double alpha, const double *data,
                         const int64_t *indices, const int64_t *indptr, const int64_t *rows,
                         const double *D, ptrdiff_t ldd, double *G, ptrdiff_t ldg);

// The instruction-set level the sparse products chose at run time ("avx512", "avx2", "baseline").
const char *fm_sparse_isa(void);


// ---------------------------------------------------------------------------------------------------
// Internals shared by fm_sparse*.c and csrc/test_sparse.c; callers need none of it.
//
// One level's eight products (fm_sparse_impl.h is their template, compiled once per level), and the
// table of the levels compiled into this build, fastest first.
typedef struct {
    const char *name;
    void (*scsr_mm_i32)(ptrdiff_t, ptrdiff_t, const float *, const int32_t *, const int32_t *,
                        const int64_t *, const float *, ptrdiff_t, float *, ptrdiff_t);
    void (*scsr_mm_i64)(ptrdiff_t, ptrdiff_t, const float *, const int64_t *, const int64_t *,
                        const int64_t *, const float *, ptrdiff_t, float *, ptrdiff_t);
    void (*dcsr_mm_i32)(ptrdiff_t, ptrdiff_t, const double *, const int32_t *, const int32_t *,
                        const int64_t *, const double *, ptrdiff_t, double *, ptrdiff_t);
    void (*dcsr_mm_i64)(ptrdiff_t, ptrdiff_t, const double *, const int64_t *, const int64_t *,
                        const int64_t *, const double *, ptrdiff_t, double *, ptrdiff_t);
    void (*scsr_tmm_add_i32)(ptrdiff_t, ptrdiff_t, float, const float *, const int32_t *,
                             const int32_t *, const int64_t *, const float *, ptrdiff_t, float *,
                             ptrdiff_t);
    void (*scsr_tmm_add_i64)(ptrdiff_t, ptrdiff_t, float, const float *, const int64_t *,
                             const int64_t *, const int64_t *, const float *, ptrdiff_t, float *,
                             ptrdiff_t);
    void (*dcsr_tmm_add_i32)(ptrdiff_t, ptrdiff_t, double, const double *, const int32_t *,
                             const int32_t *, const int64_t *, const double *, ptrdiff_t, double *,
                             ptrdiff_t);
    void (*dcsr_tmm_add_i64)(ptrdiff_t, ptrdiff_t, double, const double *, const int64_t *,
                             const int64_t *, const int64_t *, const double *, ptrdiff_t, double *,
                             ptrdiff_t);
} fm_sparse_level;

// fm_sparse_levels: every compiled level, fastest first; *count is set to their number.
const fm_sparse_level *const *fm_sparse_levels(int *count);
// fm_sparse_level_avx512 / _avx2 / _baseline: one level's entry (those compiled: fm_isa.h).
extern const fm_sparse_level fm_sparse_level_avx512, fm_sparse_level_avx2, fm_sparse_level_baseline;

#endif
