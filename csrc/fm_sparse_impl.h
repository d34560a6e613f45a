// fm_sparse_impl.h: template of the sparse products of one instruction-set level (contracts in
// fm_sparse.h).
//
// Include after defining FM_LEVEL, the level's name as a bare word (baseline, avx2, avx512), under the
// level's `#pragma GCC target(...)`: the plain loops over a dense row below are vectorised by the
// compiler for that instruction set. The file includes itself once for every (type, index) pair, which
// defines that pair's two products, and then defines the level's entry of the table of levels.

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif

#ifndef FM_X   // the outer inclusion: the four (type, index) pairs, then the level's table entry

#include "fm_tuning.h"
#define FM_PREFETCH_AHEAD FM_SPARSE_AHEAD_NONZEROS

#define FM_X s
#define FM_REAL float
#define FM_I i32
#define FM_INDEX int32_t
#include "fm_sparse_impl.h"
#define FM_X s
#define FM_REAL float
#define FM_I i64
#define FM_INDEX int64_t
#include "fm_sparse_impl.h"
#define FM_X d
#define FM_REAL double
#define FM_I i32
#define FM_INDEX int32_t
#include "fm_sparse_impl.h"
#define FM_X d
#define FM_REAL double
#define FM_I i64
#define FM_INDEX int64_t
#include "fm_sparse_impl.h"

#define FM_ENTRY(x, i) FM_CAT(FM_CAT(FM_CAT(fm_, x), FM_CAT(csr_mm_, i)), FM_CAT(_, FM_LEVEL))
#define FM_ENTRY_T(x, i) FM_CAT(FM_CAT(FM_CAT(fm_, x), FM_CAT(csr_tmm_add_, i)), FM_CAT(_, FM_LEVEL))
#define FM_STRING_(name) #name
#define FM_STRING(name) FM_STRING_(name)
const fm_sparse_level FM_CAT(fm_sparse_level_, FM_LEVEL) = {
    FM_STRING(FM_LEVEL),
    FM_ENTRY(s, i32), FM_ENTRY(s, i64), FM_ENTRY(d, i32), FM_ENTRY(d, i64),
    FM_ENTRY_T(s, i32), FM_ENTRY_T(s, i64), FM_ENTRY_T(d, i32), FM_ENTRY_T(d, i64),
};
#undef FM_ENTRY
#undef FM_ENTRY_T
#undef FM_STRING
#undef FM_STRING_
#undef FM_PREFETCH_AHEAD

#else   // the inner inclusion: the two products of one (type, index) pair

// fm_<x>csr_<product>_<i>_<level>, e.g. fm_scsr_mm_i32_avx2
#define FM_NAME(product) \
    FM_CAT(FM_CAT(FM_CAT(fm_, FM_X), FM_CAT(csr_, product)), FM_CAT(FM_CAT(_, FM_I), FM_CAT(_, FM_LEVEL)))

// Request the cache lines of the n values at row, which a coming nonzero reads.
#define FM_PREFETCH_ROW(row, n)                                                                     \
    do {                                                                                            \
        for (ptrdiff_t byte = 0; byte < (n) * (ptrdiff_t)sizeof(FM_REAL); byte += 64)               \
            __builtin_prefetch((const char *)(row) + byte);                                         \
    } while (0)

static void FM_NAME(mm)(ptrdiff_t m, ptrdiff_t n, const FM_REAL *restrict data,
                        const FM_INDEX *restrict indices, const FM_INDEX *restrict indptr,
                        const int64_t *restrict rows, const FM_REAL *restrict W, ptrdiff_t ldw,
                        FM_REAL *restrict Z, ptrdiff_t ldz)
{
    // Loop over the batch's rows; each sums the dense rows its nonzeros pick into Z's row, in cache.
    for (ptrdiff_t i = 0; i < m; i++) {
        const ptrdiff_t r = rows != NULL ? (ptrdiff_t)rows[i] : i;
        const ptrdiff_t end = (ptrdiff_t)indptr[r + 1];
        FM_REAL *restrict z = Z + i * ldz;
        for (ptrdiff_t j = 0; j < n; j++) z[j] = 0;
        for (ptrdiff_t p = (ptrdiff_t)indptr[r]; p < end; p++) {
            if (p + FM_PREFETCH_AHEAD < end) FM_PREFETCH_ROW(W + (ptrdiff_t)indices[p + FM_PREFETCH_AHEAD] * ldw, n);
            const FM_REAL x = data[p];
            const FM_REAL *restrict w = W + (ptrdiff_t)indices[p] * ldw;
            for (ptrdiff_t j = 0; j < n; j++) z[j] += x * w[j];
        }
    }
}

static void FM_NAME(tmm_add)(ptrdiff_t m, ptrdiff_t n, FM_REAL alpha, const FM_REAL *restrict data,
                             const FM_INDEX *restrict indices, const FM_INDEX *restrict indptr,
                             const int64_t *restrict rows, const FM_REAL *restrict D, ptrdiff_t ldd,
                             FM_REAL *restrict G, ptrdiff_t ldg)
{
    // Loop over the batch's rows; each scatters alpha · x · (its row of D) into the rows of G its
    // nonzeros x pick.
    for (ptrdiff_t i = 0; i < m; i++) {
        const ptrdiff_t r = rows != NULL ? (ptrdiff_t)rows[i] : i;
        const ptrdiff_t end = (ptrdiff_t)indptr[r + 1];
        const FM_REAL *restrict d = D + i * ldd;
        for (ptrdiff_t p = (ptrdiff_t)indptr[r]; p < end; p++) {
            if (p + FM_PREFETCH_AHEAD < end) FM_PREFETCH_ROW(G + (ptrdiff_t)indices[p + FM_PREFETCH_AHEAD] * ldg, n);
            const FM_REAL a = alpha * data[p];
            FM_REAL *restrict g = G + (ptrdiff_t)indices[p] * ldg;
            for (ptrdiff_t j = 0; j < n; j++) g[j] += a * d[j];
        }
    }
}

#undef FM_PREFETCH_ROW
#undef FM_NAME
#undef FM_X
#undef FM_REAL
#undef FM_I
#undef FM_INDEX

#endif
