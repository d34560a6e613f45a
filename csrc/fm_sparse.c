// fm_sparse.c: the sparse products every CPU runs (baseline), the table of levels, the public functions,
// which call the level chosen once at run time, and the check of a CSR matrix's structure (contracts in
// fm_sparse.h). The faster levels are in fm_sparse_avx2.c and fm_sparse_avx512.c; the choice follows
// the activations' rule (FASTMLP_ISA, fm_isa.h).
#include "fm_common.h"
#include "fm_isa.h"
#include "fm_sparse.h"

#define FM_LEVEL baseline
#include "fm_sparse_impl.h"

static const fm_sparse_level *const levels[] = {
#if FM_HAS_AVX512
    &fm_sparse_level_avx512,
#endif
#if FM_HAS_AVX2
    &fm_sparse_level_avx2,
#endif
    &fm_sparse_level_baseline,
};
enum { n_levels = sizeof levels / sizeof levels[0] };

const fm_sparse_level *const *fm_sparse_levels(int *count)
{
    *count = n_levels;
    return levels;
}

// The level in use: chosen once. Threads racing through the first call all compute the same answer, so
// an atomic pointer is all the locking needed.
static const fm_sparse_level *current(void)
{
    static const fm_sparse_level *chosen = NULL;
    const fm_sparse_level *level = __atomic_load_n(&chosen, __ATOMIC_ACQUIRE);
    if (level == NULL) {
        const char *names[n_levels];
        for (int i = 0; i < n_levels; i++) names[i] = levels[i]->name;
        level = levels[fm_isa_choose(names, n_levels)];
        __atomic_store_n(&chosen, level, __ATOMIC_RELEASE);
    }
    return level;
}

const char *fm_sparse_isa(void) { return current()->name; }

void fm_scsr_mm_i32(ptrdiff_t m, ptrdiff_t n, const float *data, const int32_t *indices, const int32_t *indptr,
                    const int64_t *rows, const float *W, ptrdiff_t ldw, float *Z, ptrdiff_t ldz)
{
    current()->scsr_mm_i32(m, n, data, indices, indptr, rows, W, ldw, Z, ldz);
}
void fm_scsr_mm_i64(ptrdiff_t m, ptrdiff_t n, const float *data, const int64_t *indices, const int64_t *indptr,
                    const int64_t *rows, const float *W, ptrdiff_t ldw, float *Z, ptrdiff_t ldz)
{
    current()->scsr_mm_i64(m, n, data, indices, indptr, rows, W, ldw, Z, ldz);
}
void fm_dcsr_mm_i32(ptrdiff_t m, ptrdiff_t n, const double *data, const int32_t *indices, const int32_t *indptr,
                    const int64_t *rows, const double *W, ptrdiff_t ldw, double *Z, ptrdiff_t ldz)
{
    current()->dcsr_mm_i32(m, n, data, indices, indptr, rows, W, ldw, Z, ldz);
}
void fm_dcsr_mm_i64(ptrdiff_t m, ptrdiff_t n, const double *data, const int64_t *indices, const int64_t *indptr,
                    const int64_t *rows, const double *W, ptrdiff_t ldw, double *Z, ptrdiff_t ldz)
{
    current()->dcsr_mm_i64(m, n, data, indices, indptr, rows, W, ldw, Z, ldz);
}
void fm_scsr_tmm_add_i32(ptrdiff_t m, ptrdiff_t n, float alpha, const float *data, const int32_t *indices,
                         const int32_t *indptr, const int64_t *rows, const float *D, ptrdiff_t ldd, float *G,
                         ptrdiff_t ldg)
{
    current()->scsr_tmm_add_i32(m, n, alpha, data, indices, indptr, rows, D, ldd, G, ldg);
}
void fm_scsr_tmm_add_i64(ptrdiff_t m, ptrdiff_t n, float alpha, const float *data, const int64_t *indices,
                         const int64_t *indptr, const int64_t *rows, const float *D, ptrdiff_t ldd, float *G,
                         ptrdiff_t ldg)
{
    current()->scsr_tmm_add_i64(m, n, alpha, data, indices, indptr, rows, D, ldd, G, ldg);
}
void fm_dcsr_tmm_add_i32(ptrdiff_t m, ptrdiff_t n, double alpha, const double *data, const int32_t *indices,
                         const int32_t *indptr, const int64_t *rows, const double *D, ptrdiff_t ldd, double *G,
                         ptrdiff_t ldg)
{
    current()->dcsr_tmm_add_i32(m, n, alpha, data, indices, indptr, rows, D, ldd, G, ldg);
}
void fm_dcsr_tmm_add_i64(ptrdiff_t m, ptrdiff_t n, double alpha, const double *data, const int64_t *indices,
                         const int64_t *indptr, const int64_t *rows, const double *D, ptrdiff_t ldd, double *G,
                         ptrdiff_t ldg)
{
    current()->dcsr_tmm_add_i64(m, n, alpha, data, indices, indptr, rows, D, ldd, G, ldg);
}

// The structure check, once per index type: indptr first (so that every nonzero it names lies in
// indices), then the nonzeros row by row.
#define FM_DEFINE_CHECK(i, INDEX)                                                                   \
    int fm_csr_check_##i(ptrdiff_t n_rows, ptrdiff_t n_cols, ptrdiff_t nnz, const INDEX *indptr,    \
                         const INDEX *indices)                                                      \
    {                                                                                               \
        int sorted = 1;                                                                             \
        if (indptr[0] != 0 || indptr[n_rows] > nnz) return FM_CSR_BAD_INDPTR;                       \
        for (ptrdiff_t r = 0; r < n_rows; r++)                                                      \
            if (indptr[r + 1] < indptr[r]) return FM_CSR_BAD_INDPTR;                                \
        for (ptrdiff_t r = 0; r < n_rows; r++)                                                      \
            for (ptrdiff_t p = indptr[r]; p < indptr[r + 1]; p++) {                                 \
                if (indices[p] < 0 || indices[p] >= n_cols) return FM_CSR_BAD_INDEX;                \
                if (p > indptr[r] && indices[p] <= indices[p - 1]) sorted = 0;                      \
            }                                                                                       \
        return sorted ? FM_OK : FM_CSR_UNSORTED;                                                    \
    }
FM_DEFINE_CHECK(i32, int32_t)
FM_DEFINE_CHECK(i64, int64_t)
#undef FM_DEFINE_CHECK
