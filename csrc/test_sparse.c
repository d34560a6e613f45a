// test_sparse.c: every sparse-product level this CPU runs, float and double, int32 and int64 indices,
// against plain loops in long double (`make -C csrc test`). Shapes 1, 3 and 17 wide (every vector tail),
// a column block of a wider matrix, empty rows, unsorted and duplicate indices, a batch of rows picked
// out of order and rows == NULL; writing past an output row is caught by guard values. Then the structure
// check on good, unsorted, duplicate, out-of-range and broken-indptr matrices. Prints each failure, then
// "N passed, N failed"; the exit code is 1 if any case failed.
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_common.h"
#include "fm_isa.h"
#include "fm_sparse.h"

static int n_passed, n_failed;

static void check(int ok, const char *what, const char *level, const char *type, ptrdiff_t n)
{
    if (ok) {
        n_passed++;
        return;
    }
    if (n_failed++ < 20) printf("FAIL %s: level %s, %s, n %td\n", what, level, type, n);
}

static double uniform(unsigned *state)   // in [-1, 1), a fixed sequence
{
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 8) / (1 << 23) - 1;
}

// A 7 x 40 CSR matrix: row 2 and row 5 empty, row 3 unsorted with a duplicate, column 39 used.
enum { ROWS = 7, COLS = 40, NNZ = 14, LD = 24, GUARD = 777 };
static const int64_t indptr64[ROWS + 1] = {0, 3, 5, 5, 9, 9, 12, 14};
static const int64_t indices64[NNZ] = {0, 7, 39, 1, 2, 9, 3, 9, 20, 5, 6, 38, 39, 0};
static const int64_t batch[5] = {3, 0, 6, 2, 3};   // out of order, an empty row, a row twice

#define FM_DEFINE_TESTS(x, REAL, EPS, i, INDEX)                                                        \
    static void x##test_##i(const fm_sparse_level *level, ptrdiff_t n, ptrdiff_t ld, const int64_t *rows, \
                           ptrdiff_t m)                                                                 \
    {                                                                                                   \
        INDEX indptr[ROWS + 1], indices[NNZ];                                                           \
        REAL data[NNZ], W[COLS * LD], Z[5 * LD], D[5 * LD], G[COLS * LD];                               \
        long double want[COLS * LD], scale[COLS * LD];                                                  \
        unsigned state = 1;                                                                             \
        for (int r = 0; r <= ROWS; r++) indptr[r] = (INDEX)indptr64[r];                                 \
        for (int p = 0; p < NNZ; p++) indices[p] = (INDEX)indices64[p], data[p] = (REAL)uniform(&state); \
        for (int e = 0; e < COLS * LD; e++) W[e] = (REAL)uniform(&state), G[e] = (REAL)uniform(&state); \
        for (int e = 0; e < 5 * LD; e++) D[e] = (REAL)uniform(&state), Z[e] = (REAL)GUARD;              \
        /* Z := X[rows] · W on the first n columns; columns n .. ld-1 of Z keep their guard */          \
        level->x##csr_mm_##i(m, n, data, indices, indptr, rows, W, ld, Z, ld);                          \
        int ok = 1;                                                                                     \
        for (ptrdiff_t r = 0; r < m; r++) {                                                             \
            const int64_t row = rows ? rows[r] : r;                                                     \
            for (ptrdiff_t j = 0; j < ld; j++) {                                                        \
                long double sum = 0, size = 0;                                                          \
                for (int64_t p = indptr64[row]; p < indptr64[row + 1]; p++) {                           \
                    sum += (long double)data[p] * W[indices64[p] * ld + j];                             \
                    size += fabsl((long double)data[p] * W[indices64[p] * ld + j]);                     \
                }                                                                                       \
                const REAL got = Z[r * ld + j];                                                         \
                ok &= j < n ? fabsl(got - sum) <= 4 * EPS * size : got == (REAL)GUARD;                  \
            }                                                                                           \
        }                                                                                               \
        check(ok, "csr_mm", level->name, #x #i, n);                                                     \
        /* G += alpha X[rows]ᵀ · D on the first n columns */                                           \
        const REAL alpha = (REAL)-0.5;                                                                  \
        for (int e = 0; e < COLS * LD; e++) want[e] = G[e], scale[e] = fabsl((long double)G[e]);        \
        for (ptrdiff_t r = 0; r < m; r++) {                                                             \
            const int64_t row = rows ? rows[r] : r;                                                     \
            for (int64_t p = indptr64[row]; p < indptr64[row + 1]; p++)                                 \
                for (ptrdiff_t j = 0; j < n; j++) {                                                     \
                    const long double term = (long double)alpha * data[p] * D[r * ld + j];              \
                    want[indices64[p] * ld + j] += term;                                                \
                    scale[indices64[p] * ld + j] += fabsl(term);                                        \
                }                                                                                       \
        }                                                                                               \
        level->x##csr_tmm_add_##i(m, n, alpha, data, indices, indptr, rows, D, ld, G, ld);              \
        ok = 1;                                                                                         \
        for (int e = 0; e < COLS * LD; e++) ok &= fabsl(G[e] - want[e]) <= 4 * EPS * scale[e];         \
        check(ok, "csr_tmm_add", level->name, #x #i, n);                                                \
    }
FM_DEFINE_TESTS(s, float, 1.1920929e-07L, i32, int32_t)
FM_DEFINE_TESTS(s, float, 1.1920929e-07L, i64, int64_t)
FM_DEFINE_TESTS(d, double, 2.220446e-16L, i32, int32_t)
FM_DEFINE_TESTS(d, double, 2.220446e-16L, i64, int64_t)

static void test_check(void)
{
    int32_t indptr[4] = {0, 2, 2, 4}, indices[4] = {1, 5, 0, 9};
    check(fm_csr_check_i32(3, 10, 4, indptr, indices) == FM_OK, "check: canonical", "-", "i32", 0);
    indices[1] = 1;   // a duplicate
    check(fm_csr_check_i32(3, 10, 4, indptr, indices) == FM_CSR_UNSORTED, "check: duplicate", "-", "i32", 0);
    indices[1] = 0;   // unsorted
    check(fm_csr_check_i32(3, 10, 4, indptr, indices) == FM_CSR_UNSORTED, "check: unsorted", "-", "i32", 0);
    indices[3] = 10;  // out of range (and unsorted before it: the worse answer wins)
    check(fm_csr_check_i32(3, 10, 4, indptr, indices) == FM_CSR_BAD_INDEX, "check: index", "-", "i32", 0);
    indices[3] = -1;
    check(fm_csr_check_i32(3, 10, 4, indptr, indices) == FM_CSR_BAD_INDEX, "check: negative", "-", "i32", 0);
    check(fm_csr_check_i32(3, 10, 3, indptr, indices) == FM_CSR_BAD_INDPTR, "check: nnz", "-", "i32", 0);
    int64_t indptr64_bad[4] = {0, 3, 2, 4}, indices64_ok[4] = {0, 1, 2, 3};
    check(fm_csr_check_i64(3, 10, 4, indptr64_bad, indices64_ok) == FM_CSR_BAD_INDPTR, "check: decreasing", "-",
          "i64", 0);
    indptr64_bad[0] = 1, indptr64_bad[1] = 1;
    check(fm_csr_check_i64(3, 10, 4, indptr64_bad, indices64_ok) == FM_CSR_BAD_INDPTR, "check: start", "-", "i64",
          0);
    int64_t empty[1] = {0};
    check(fm_csr_check_i64(0, 10, 0, empty, NULL) == FM_OK, "check: no rows", "-", "i64", 0);
}

int main(void)
{
    int count;
    const fm_sparse_level *const *levels = fm_sparse_levels(&count);
    static const ptrdiff_t widths[] = {1, 3, 17, 24};
    for (int l = 0; l < count; l++) {
        if (!fm_cpu_runs(levels[l]->name)) continue;
        for (int w = 0; w < 4; w++) {
            const ptrdiff_t n = widths[w];
            stest_i32(levels[l], n, LD, batch, 5), stest_i64(levels[l], n, LD, batch, 5);
            dtest_i32(levels[l], n, LD, batch, 5), dtest_i64(levels[l], n, LD, batch, 5);
            stest_i32(levels[l], n, LD, NULL, 5), dtest_i64(levels[l], n, LD, NULL, 5);
        }
    }
    test_check();
    // The public functions run the level chosen for this CPU.
    check(strcmp(fm_sparse_isa(), levels[0]->name) == 0 || !fm_cpu_runs(levels[0]->name) || getenv("FASTMLP_ISA"),
          "fm_sparse_isa is the fastest level", fm_sparse_isa(), "-", 0);
    printf("test_sparse: %d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
