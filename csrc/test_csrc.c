// test_csrc.c: tests of the C kernels with only a C compiler (`make -C csrc test`).
//
// Every GEMM level this CPU runs (and "reference", plain loops) is compared, in float and double, with
// a naive triple loop accumulating in double, on a grid of shapes around the block sizes (1, 3, MR±1,
// NR±1, 17, 257 = KC+1, ...), with A and B plain or transposed, beta 0 on a C full of NaN, beta 0.5,
// ldc > n, and a misaligned workspace of exactly the advertised size. Each product also runs with
// nthreads = 1 and 2, which must agree bit for bit; A is also read as a mini-batch picked out of a
// larger matrix, by an index of its rows (a_rows) or of its columns (a_cols); and the team product (fm_sgemm_team) is checked
// against it tile by tile. The team pool (fm_team.c) runs tasks whose threads meet at barriers, alone
// and from two callers at once. The choice of level (fm_isa_choose, shared with the
// activations) is checked under every FASTMLP_ISA. Prints "N passed, N failed"; exits 1 on a failure.
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_gemm.h"
#include "fm_isa.h"
#include "fm_team.h"
#include "fm_team_pthread.h"

static int n_passed, n_failed;

static void check(int ok, const char *what, const char *level, const char *type, ptrdiff_t m,
                  ptrdiff_t n, ptrdiff_t k, int case_id)
{
    if (ok) {
        n_passed++;
        return;
    }
    if (n_failed++ < 20)
        printf("FAIL %s: level %s, %s, m=%td n=%td k=%td, case %d\n", what, level, type, m, n, k, case_id);
}

static double uniform(unsigned *state)   // in [-1, 1), a fixed sequence
{
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 8) / (1 << 23) - 1;
}

// One product in the storage of the chosen type: A, B and C are given in double and C is updated in
// place (converted to float and back when single is set: both conversions are exact for C's values).
// The workspace is misaligned on purpose and has guard values after it; returns 0 if they were touched.
static int run_gemm(int single, const fm_gemm_level *level, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                    double alpha, const double *A, size_t a_len, ptrdiff_t rsa, ptrdiff_t csa,
                    const int64_t *a_rows, const int64_t *a_cols, const double *B, size_t b_len, ptrdiff_t rsb, ptrdiff_t csb, double beta,
                    double *C, size_t c_len, ptrdiff_t ldc, int nthreads, int *status)
{
    enum { guard = 16 };
    const double sentinel = 12345.0;
    int guards_ok = 1;
    if (single) {
        size_t w_len = fm_sgemm_workspace_size(m, n, k, nthreads);
        float *a = malloc(a_len * sizeof *a), *b = malloc(b_len * sizeof *b), *c = malloc(c_len * sizeof *c);
        float *w = malloc((w_len + guard + 1) * sizeof *w);
        for (size_t i = 0; i < a_len; i++) a[i] = (float)A[i];
        for (size_t i = 0; i < b_len; i++) b[i] = (float)B[i];
        for (size_t i = 0; i < c_len; i++) c[i] = (float)C[i];
        for (size_t i = 0; i < guard; i++) w[1 + w_len + i] = (float)sentinel;
        *status = fm_sgemm_at_level(level, m, n, k, (float)alpha, a, rsa, csa, a_rows, a_cols, b, rsb, csb,
                                    (float)beta, c, ldc, w + 1, nthreads);
        for (size_t i = 0; i < guard; i++) guards_ok &= w[1 + w_len + i] == (float)sentinel;
        for (size_t i = 0; i < c_len; i++) C[i] = c[i];
        free(a), free(b), free(c), free(w);
    } else {
        size_t w_len = fm_dgemm_workspace_size(m, n, k, nthreads);
        double *c = malloc(c_len * sizeof *c), *w = malloc((w_len + guard + 1) * sizeof *w);
        memcpy(c, C, c_len * sizeof *c);
        for (size_t i = 0; i < guard; i++) w[1 + w_len + i] = sentinel;
        *status = fm_dgemm_at_level(level, m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, c,
                                    ldc, w + 1, nthreads);
        for (size_t i = 0; i < guard; i++) guards_ok &= w[1 + w_len + i] == sentinel;
        memcpy(C, c, c_len * sizeof *c);
        free(c), free(w);
    }
    return guards_ok;
}

// The storage cases of check_shape: A and B plain or transposed, beta 0 or not, and A read as it is
// or through an index of its rows or of its columns.
enum { NO_INDEX, ROWS_INDEX, COLS_INDEX };
static const struct { int a_trans, b_trans, beta_zero, index; } cases[] = {
    {0, 0, 0, NO_INDEX}, {1, 0, 0, NO_INDEX}, {0, 1, 0, NO_INDEX}, {1, 1, 0, NO_INDEX},
    {0, 0, 1, NO_INDEX}, {1, 0, 1, NO_INDEX}, {0, 1, 1, NO_INDEX}, {1, 1, 1, NO_INDEX},
    {0, 0, 0, ROWS_INDEX}, {1, 1, 1, ROWS_INDEX}, {1, 0, 0, ROWS_INDEX}, {0, 1, 1, ROWS_INDEX},
    {0, 0, 1, COLS_INDEX}, {1, 1, 0, COLS_INDEX}, {1, 0, 1, COLS_INDEX}, {0, 1, 0, COLS_INDEX},
};

// An index of count entries into 0 .. size-1, in a scrambled order, some entries repeated.
static int64_t *make_index(ptrdiff_t count, ptrdiff_t size, unsigned *state)
{
    int64_t *index = malloc((size_t)(count > 0 ? count : 1) * sizeof *index);
    for (ptrdiff_t i = 0; i < count; i++) index[i] = (int64_t)((uniform(state) + 1) / 2 * (double)size) % size;
    return index;
}

// The levels whose kernels check_shape compares: those this CPU runs (fm_gemm_levels), and how
// many checks failed at each.
static const fm_gemm_level *levels;
static int n_levels, level_runs[8], level_failures[8];

// One shape, one type, all storage cases: every level this CPU runs against the naive product
// (computed once per case, in double).
static void check_shape(int single, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    const char *type = single ? "float" : "double";
    const double eps = single ? 0x1p-23 : 0x1p-52;
    unsigned state = (unsigned)(m * 7919 + n * 104729 + k * 31);
    for (int case_id = 0; case_id < (int)(sizeof cases / sizeof cases[0]); case_id++) {
        const int a_trans = cases[case_id].a_trans, b_trans = cases[case_id].b_trans;
        const int beta_zero = cases[case_id].beta_zero, index = cases[case_id].index;
        const double alpha = case_id % 3 == 0 ? 1.0 : -0.75, beta = beta_zero ? 0.0 : 0.5;
        // A is m x k, or picked by an index out of a larger matrix (m + 5 rows or k + 5 columns), stored
        // row-major (lda = columns + 1) or transposed (lda = rows + 2); B likewise, without an index.
        const ptrdiff_t a_rows_total = index == ROWS_INDEX ? m + 5 : m, a_cols_total = index == COLS_INDEX ? k + 5 : k;
        const ptrdiff_t lda = a_trans ? a_rows_total + 2 : a_cols_total + 1, ldb = b_trans ? k + 3 : n + 1, ldc = n + 2;
        const ptrdiff_t rsa = a_trans ? 1 : lda, csa = a_trans ? lda : 1;
        const ptrdiff_t rsb = b_trans ? 1 : ldb, csb = b_trans ? ldb : 1;
        const size_t a_len = (size_t)((a_trans ? a_cols_total : a_rows_total) * lda + 1);
        const size_t b_len = (size_t)((b_trans ? n : k) * ldb + 1), c_len = (size_t)(m * ldc);
        int64_t *a_rows = index == ROWS_INDEX ? make_index(m, a_rows_total, &state) : NULL;
        int64_t *a_cols = index == COLS_INDEX ? make_index(k, a_cols_total, &state) : NULL;
        double *A = malloc(a_len * sizeof *A), *B = malloc(b_len * sizeof *B);
        double *C0 = malloc(c_len * sizeof *C0), *C1 = malloc(c_len * sizeof *C1), *C2 = malloc(c_len * sizeof *C2);
        double *want = malloc(c_len * sizeof *want), *bound = malloc(c_len * sizeof *bound);
        for (size_t i = 0; i < a_len; i++) A[i] = uniform(&state);
        for (size_t i = 0; i < b_len; i++) B[i] = uniform(&state);
        if (single) {   // the values the float product sees
            for (size_t i = 0; i < a_len; i++) A[i] = (float)A[i];
            for (size_t i = 0; i < b_len; i++) B[i] = (float)B[i];
        }
        for (size_t i = 0; i < c_len; i++) C0[i] = beta_zero ? NAN : (float)uniform(&state);
        for (ptrdiff_t i = 0; i < m; i++)
            for (ptrdiff_t j = 0; j < n; j++) {
                double sum = 0, magnitude = 0;
                for (ptrdiff_t p = 0; p < k; p++) {
                    const ptrdiff_t a_row = a_rows ? a_rows[i] : i, a_col = a_cols ? a_cols[p] : p;
                    const double term = A[a_row * rsa + a_col * csa] * B[p * rsb + j * csb];
                    sum += term, magnitude += fabs(term);
                }
                const double c_old = beta_zero ? 0 : C0[i * ldc + j];
                want[i * ldc + j] = alpha * sum + beta * c_old;
                bound[i * ldc + j] = 4 * (k + 2) * eps * (fabs(alpha) * magnitude + fabs(beta * c_old)) + 1e-300;
            }

        for (int l = 0; l < n_levels; l++) {
            if (!level_runs[l]) continue;
            const fm_gemm_level *level = &levels[l];
            const int before = n_failed;
            memcpy(C1, C0, c_len * sizeof *C0);
            memcpy(C2, C0, c_len * sizeof *C0);
            int status1, status2;
            int guards = run_gemm(single, level, m, n, k, alpha, A, a_len, rsa, csa, a_rows, a_cols, B, b_len, rsb,
                                  csb, beta, C1, c_len, ldc, 1, &status1);
            guards &= run_gemm(single, level, m, n, k, alpha, A, a_len, rsa, csa, a_rows, a_cols, B, b_len, rsb,
                               csb, beta, C2, c_len, ldc, 2, &status2);
            check(status1 == FM_OK && status2 == FM_OK, "status", level->name, type, m, n, k, case_id);
            check(guards, "workspace overrun", level->name, type, m, n, k, case_id);
            check(memcmp(C1, C2, c_len * sizeof *C1) == 0, "nthreads 1 vs 2 not bit-identical", level->name, type,
                  m, n, k, case_id);
            // AVX-512's half kernel (AVX2's narrow one, for short last vectors) adds the same products in the
            // same order as AVX2: with alpha = 1 and beta = 0 (every product of inference), the same bits.
            // (Else the compiler may fuse alpha * sum + beta * c, or the sum of a later k block, differently
            // in each level's file.) Its float tail kernel, which takes those columns when A is read along
            // its rows, adds them in another order (fm_microkernel_avx512.c).
            const int k4_tail = single && csa == 1 && !a_cols;
            const fm_gemm_level *avx2 = alpha == 1 && beta_zero && !k4_tail && strcmp(level->name, "avx512") == 0 &&
                                        fm_cpu_runs("avx2") ? level + 1 : NULL;
            if (avx2 != NULL && strcmp(avx2->name, "avx2") == 0) {
                memcpy(C2, C0, c_len * sizeof *C0);
                run_gemm(single, avx2, m, n, k, alpha, A, a_len, rsa, csa, a_rows, a_cols, B, b_len, rsb, csb, beta,
                         C2, c_len, ldc, 1, &status2);
                check(memcmp(C1, C2, c_len * sizeof *C1) == 0, "avx512 vs avx2 not bit-identical", level->name,
                      type, m, n, k, case_id);
            }

            int values_ok = 1, padding_ok = 1;
            for (ptrdiff_t i = 0; i < m; i++) {
                for (ptrdiff_t j = 0; j < n; j++)
                    if (!(fabs(C1[i * ldc + j] - want[i * ldc + j]) <= bound[i * ldc + j])) values_ok = 0;
                for (ptrdiff_t j = n; j < ldc; j++)   // ldc > n: the gap between rows is left alone
                    if (!(isnan(C1[i * ldc + j]) ? isnan(C0[i * ldc + j]) : C1[i * ldc + j] == C0[i * ldc + j]))
                        padding_ok = 0;
            }
            check(values_ok, "values differ from the naive product", level->name, type, m, n, k, case_id);
            check(padding_ok, "wrote outside the m x n matrix", level->name, type, m, n, k, case_id);
            level_failures[l] += n_failed - before;
        }
        free(A), free(B), free(C0), free(C1), free(C2), free(want), free(bound), free(a_rows), free(a_cols);
    }
}

// Contract details beyond the values: errors, empty products, k == 0, alpha == 0.
static void check_special_cases(void)
{
    float A[4] = {NAN, NAN, NAN, NAN}, B[4] = {NAN, NAN, NAN, NAN}, C[4] = {1, 2, 3, 4}, w[64];
    check(fm_sgemm(-1, 1, 1, 1, A, 1, 1, NULL, NULL, B, 1, 1, 0, C, 1, w, 1) == FM_EINVAL, "m < 0", "", "float", -1, 1, 1, 0);
    check(fm_sgemm(1, 1, 1, 1, A, 1, 1, NULL, NULL, B, 1, 1, 0, C, 1, w, 0) == FM_EINVAL, "nthreads 0", "", "float", 1, 1, 1, 0);
    const int64_t first[1] = {0};
    check(fm_sgemm(1, 1, 1, 1, A, 1, 1, first, first, B, 1, 1, 0, C, 1, w, 1) == FM_EINVAL, "two indexes", "",
          "float", 1, 1, 1, 0);
    check(fm_sgemm(0, 2, 2, 1, A, 2, 1, NULL, NULL, B, 2, 1, 0, C, 2, w, 1) == FM_OK && C[0] == 1, "m == 0", "", "float", 0, 2, 2, 0);
    check(fm_sgemm(2, 2, 0, 1, A, 2, 1, NULL, NULL, B, 2, 1, 0.5f, C, 2, w, 1) == FM_OK && C[0] == 0.5f && C[3] == 2,
          "k == 0 scales C", "", "float", 2, 2, 0, 0);
    check(fm_sgemm(2, 2, 2, 0, A, 2, 1, NULL, NULL, B, 2, 1, 2, C, 2, w, 1) == FM_OK && C[0] == 1 && C[3] == 4,
          "alpha == 0 reads neither A nor B", "", "float", 2, 2, 2, 0);
    // 20 columns: a vector and a tail of 4 for AVX-512's half kernel in float; all are scaled.
    float wide[20], work[1024];
    for (int j = 0; j < 20; j++) wide[j] = (float)j;
    check(fm_sgemm(1, 20, 0, 1, A, 1, 1, NULL, NULL, B, 20, 1, 2, wide, 20, work, 1) == FM_OK && wide[0] == 0 &&
              wide[15] == 30 && wide[19] == 38,
          "k == 0 scales every column", "", "float", 1, 20, 0, 0);
    const char *isa = fm_gemm_isa();
    check(isa != NULL && fm_cpu_runs(fm_gemm_level_current()->name), "fm_gemm_isa", isa, "", 0, 0, 0, 0);
}

// fm_sgemm_team: the tiles that the ids 0 .. count-1 of a team compute (here one after another) cover
// C exactly once, are as wide as C when whole_rows is set, and give C bit for bit as fm_sgemm does.
static void check_team(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    unsigned state = (unsigned)(m * 31 + n * 17 + k);
    float *A = malloc((size_t)(m * k) * sizeof *A), *B = malloc((size_t)(k * n) * sizeof *B);
    float *want = malloc((size_t)(m * n) * sizeof *want), *C = malloc((size_t)(m * n) * sizeof *C);
    int *covered = malloc((size_t)(m * n) * sizeof *covered);
    float *w = malloc(fm_sgemm_workspace_size(m, n, k, 1) * sizeof *w);   // each id in turn: one suffices
    for (ptrdiff_t i = 0; i < m * k; i++) A[i] = (float)uniform(&state);
    for (ptrdiff_t i = 0; i < k * n; i++) B[i] = (float)uniform(&state);
    fm_sgemm(m, n, k, 1.0f, A, k, 1, NULL, NULL, B, n, 1, 0.0f, want, n, w, 1);
    for (int count = 1; count <= 3; count++) {
        for (int whole_rows = 0; whole_rows <= 1; whole_rows++) {
            int ok = 1, wide = 1;
            memset(covered, 0, (size_t)(m * n) * sizeof *covered);
            for (ptrdiff_t i = 0; i < m * n; i++) C[i] = NAN;
            for (int id = 0; id < count; id++) {
                fm_tile tile;
                ok &= fm_sgemm_team(m, n, k, 1.0f, A, k, 1, NULL, NULL, B, n, 1, 0.0f, C, n, w, whole_rows, id, count,
                                    &tile) == FM_OK;
                if (tile.rows > 0 && whole_rows) wide &= tile.col == 0 && tile.cols == n;
                for (ptrdiff_t i = tile.row; i < tile.row + tile.rows; i++)
                    for (ptrdiff_t j = tile.col; j < tile.col + tile.cols; j++) covered[i * n + j]++;
            }
            for (ptrdiff_t i = 0; i < m * n; i++) ok &= covered[i] == 1;
            check(ok && wide && memcmp(C, want, (size_t)(m * n) * sizeof *C) == 0,
                  "team tiles cover C once, bit-identical to fm_sgemm", "current", "float", m, n, k, count);
        }
    }
    fm_tile tile;
    check(fm_sgemm_team(m, n, k, 1.0f, A, k, 1, NULL, NULL, B, n, 1, 0.0f, C, n, w, 0, 2, 2, &tile) == FM_EINVAL &&
              tile.rows == 0, "team id out of range", "current", "float", m, n, k, 0);
    free(A), free(B), free(want), free(C), free(covered), free(w);
}

// A task of ROUNDS rounds: in each, every thread writes its slot, meets the others at the barrier,
// and checks every slot holds this round's value; a second barrier ends the round.
enum { ROUNDS = 200 };
typedef struct { int slots[FM_TEAM_MAX]; atomic_int errors, ran, runs_of_id[FM_TEAM_MAX]; } team_job;

static void team_task(void *p, int id, int count)
{
    team_job *job = p;
    atomic_fetch_add(&job->ran, 1);
    atomic_fetch_add(&job->runs_of_id[id], 1);
    for (int round = 1; round <= ROUNDS; round++) {
        job->slots[id] = round * 1000 + id;
        fm_team_barrier(count);
        for (int other = 0; other < count; other++)
            if (job->slots[other] != round * 1000 + other) atomic_fetch_add(&job->errors, 1);
        fm_team_barrier(count);
    }
}

// Runs a team of `count` and reports (through check) whether it ran on `want` threads, error-free.
static int run_team(int count, int want)
{
    team_job job = {0};
    const int used = fm_team_run(count, team_task, &job);
    int each_id_once = 1;   // ids 0 .. want-1 ran the task once each
    for (int id = 0; id < want; id++) each_id_once &= job.runs_of_id[id] == 1;
    return used == want && job.ran == want && each_id_once && job.errors == 0;
}

static void *run_team_thread(void *ok)
{
    team_job job = {0};
    const int used = fm_team_run(2, team_task, &job);
    *(int *)ok = (used == 1 || used == 2) && job.ran == used && job.errors == 0;
    return NULL;
}

static void check_team_pool(void)
{
    check(run_team(2, 1), "without a starter, a team is its caller alone", "", "", 0, 0, 0, 2);
    fm_team_set_starter(fm_start_pthread);
    const unsigned runs = fm_team_runs();
    for (int count = 1; count <= 8; count++)
        check(run_team(count, count), "a team of count threads meets at barriers", "", "", 0, 0, 0, count);
    check(run_team(FM_TEAM_MAX + 5, FM_TEAM_MAX), "a team of more than FM_TEAM_MAX", "", "", 0, 0, 0, 0);
    check(fm_team_runs() == runs + 8 && fm_team_workers() == FM_TEAM_MAX - 1, "fm_team_runs, fm_team_workers",
          "", "", 0, 0, 0, 0);
    // Two callers at once: one holds the pool, the other runs alone; both finish with correct results.
    pthread_t other;
    int ok_other = 0, ok_here = 0;
    for (int i = 0; i < 20; i++) {
        pthread_create(&other, NULL, run_team_thread, &ok_other);
        run_team_thread(&ok_here);
        pthread_join(other, NULL);
        check(ok_other && ok_here, "two callers of fm_team_run at once", "", "", 0, 0, 0, i);
    }
}

// Runs task n of a made-up run on *c at time now: the threads chosen, recorded as taking `seconds`.
static int made_up_task(fm_team_choice *c, long long now, double team_seconds, double alone_seconds)
{
    const int threads = fm_team_choose(c, 4, now);
    fm_team_record(c, threads, threads > 1 ? team_seconds : alone_seconds);
    return threads;
}

// fm_team_choose and fm_team_record on made-up times; then fm_team_run_adaptive for real.
static void check_team_choice(void)
{
    fm_team_choice c = {0};
    check(fm_team_choose(&c, 1, 0) == 1, "a team of one is always alone", "", "", 0, 0, 0, 0);
    // A try of the team, then one of running alone; their first tasks are not counted.
    const long long try_ns = FM_TEAM_TRY_NS, every_ns = FM_TEAM_TRY_EVERY_NS;
    int ok = 1;
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&c, 0, i == 0 ? 9.0 : 1.0, 0) == 4;
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&c, try_ns, 0, i == 0 ? 9.0 : 2.0) == 1;
    check(ok && fm_team_estimate(&c, 1) == 1.0 && fm_team_estimate(&c, 0) == 2.0, "the team is tried first, then alone",
          "", "", 0, 0, 0, 0);
    // The faster option runs until FM_TEAM_TRY_EVERY_NS has passed and FM_TEAM_TRY_EVERY_TASKS tasks
    // have run since the last try began; then the other one is tried again, for at least
    // FM_TEAM_TRY_TASKS tasks and FM_TEAM_TRY_NS.
    for (int i = 0; i < FM_TEAM_TRY_EVERY_TASKS + 10; i++)
        ok &= made_up_task(&c, try_ns + every_ns - 1, 1.0, 2.0) == 4;
    check(ok, "the faster option between tries", "", "", 0, 0, 0, 0);
    const long long t = try_ns + every_ns;
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&c, t, 1.0, 2.0) == 1;
    ok &= made_up_task(&c, t + try_ns - 1, 1.0, 2.0) == 1;
    ok &= made_up_task(&c, t + try_ns, 1.0, 2.0) == 4;
    check(ok, "the slower option is tried again for a while", "", "", 0, 0, 0, 0);
    // The team slows down (the machine got busy): a few slow tasks of the last 8 change nothing (an
    // interrupt), five make the median slow, and from then on the tasks run alone.
    for (int i = 0; i < 5; i++) ok &= made_up_task(&c, t + try_ns, 4.0, 2.0) == 4;
    for (int i = 0; i < FM_TEAM_TRY_EVERY_TASKS; i++) ok &= made_up_task(&c, t + try_ns, 4.0, 2.0) == 1;
    check(ok && fm_team_estimate(&c, 1) == 4.0, "a run of slow team tasks turns to running alone", "", "", 0, 0, 0, 0);
    // The machine is quiet again: the next try finds the team fast, and it takes over.
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&c, t + every_ns, 1.0, 2.0) == 4;
    for (int i = 0; i < 10; i++) ok &= made_up_task(&c, t + every_ns + try_ns, 1.0, 2.0) == 4;
    check(ok && fm_team_estimate(&c, 1) == 1.0, "a try that finds the team fast again brings it back", "", "", 0, 0, 0,
          0);
    // Time enough for another try, but too few tasks since the last one (long tasks): not yet.
    for (int i = 0; i < FM_TEAM_TRY_EVERY_TASKS - 20; i++) ok &= made_up_task(&c, t + 3 * every_ns, 1.0, 2.0) == 4;
    int alone = 0;
    for (int i = 0; i < 40; i++) alone += made_up_task(&c, t + 3 * every_ns + i * try_ns, 1.0, 2.0) == 1;
    check(ok && alone == FM_TEAM_TRY_TASKS, "tries wait for FM_TEAM_TRY_EVERY_TASKS tasks too", "", "", 0, 0, 0, alone);
    // ... but not beyond FM_TEAM_TRY_AFTER_NS: a slow team tried at 0, running alone from try_ns on,
    // few and long tasks, and the team is tried again FM_TEAM_TRY_AFTER_NS after that try began.
    fm_team_choice d = {0};
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&d, 0, 3.0, 0) == 4;
    for (int i = 0; i < FM_TEAM_TRY_TASKS; i++) ok &= made_up_task(&d, try_ns, 0, 2.0) == 1;
    ok &= made_up_task(&d, 2 * try_ns, 3.0, 2.0) == 1;
    ok &= made_up_task(&d, try_ns + FM_TEAM_TRY_AFTER_NS - 1, 3.0, 2.0) == 1;
    ok &= made_up_task(&d, try_ns + FM_TEAM_TRY_AFTER_NS, 3.0, 2.0) == 4;
    check(ok, "long tasks try the other option after FM_TEAM_TRY_AFTER_NS", "", "", 0, 0, 0, 0);
    // For real: each task is done once, on the threads the call reports, and both options get measured
    // (after the team's try, of at least FM_TEAM_TRY_NS).
    fm_team_choice real = {0};
    ok = 1;
    for (int i = 0; i < 1000000 && !(real.filled[0] > 0 && real.filled[1] > 0); i++) {
        team_job job = {0};
        const int used = fm_team_run_adaptive(&real, 2, 10, team_task, &job);
        ok &= (used == 1 || used == 2) && job.ran == used && job.errors == 0;
    }
    check(ok && real.filled[0] > 0 && real.filled[1] > 0, "fm_team_run_adaptive", "", "", 0, 0,
          0, 0);
}

// fm_isa_choose under each FASTMLP_ISA, for the GEMM's four names, the activations' three and a table
// without the x86 levels, against the answer worked out here from fm_cpu_runs. FASTMLP_ISA is restored
// afterwards (fm_gemm_level_current has already cached its choice by then).
static void check_isa_choice(void)
{
    static const char *const gemm[] = {"avx512", "avx2", "baseline", "reference"};
    static const char *const activations[] = {"avx512", "avx2", "baseline"};
    static const char *const settings[] = {NULL, "", "sse9", "avx512", "avx2", "baseline", "reference"};
    const char *saved = getenv("FASTMLP_ISA");
    char *saved_copy = saved != NULL ? strdup(saved) : NULL;
    const int runs[] = {fm_cpu_runs("avx512"), fm_cpu_runs("avx2"), 1, 1};
    check(fm_cpu_runs("baseline") && fm_cpu_runs("reference") && fm_cpu_runs("sse9"),
          "fm_cpu_runs of a name other than avx512 and avx2", "", "", 0, 0, 0, 0);
    for (int s = 0; s < 7; s++) {
        if (settings[s] == NULL) unsetenv("FASTMLP_ISA");
        else setenv("FASTMLP_ISA", settings[s], 1);
        // Start from the named level (unset, empty or unknown: the fastest), then slower until one runs.
        int want_gemm = s < 3 ? 0 : s - 3;
        while (!runs[want_gemm]) want_gemm++;
        const int want_activations = want_gemm < 2 ? want_gemm : 2;   // "reference" means baseline
        const char *setting = settings[s] != NULL ? settings[s] : "(unset)";
        check(fm_isa_choose(gemm, 4) == want_gemm, "fm_isa_choose, GEMM levels", setting, "", 0, 0, 0, s);
        check(fm_isa_choose(activations, 3) == want_activations, "fm_isa_choose, activation levels", setting,
              "", 0, 0, 0, s);
        // A table without the x86 levels (the GEMM on arm64): avx512 and avx2 start from baseline.
        check(fm_isa_choose(gemm + 2, 2) == (s == 6), "fm_isa_choose, baseline and reference only", setting,
              "", 0, 0, 0, s);
    }
    if (saved_copy != NULL) setenv("FASTMLP_ISA", saved_copy, 1);
    else unsetenv("FASTMLP_ISA");
    free(saved_copy);
}

// With the argument "team", only the team pool's checks run (test_csrc_condvar: the pool built to
// sleep on a condition variable; the products themselves do not depend on how the pool sleeps). With
// "float" or "double", the products of that type only (two processes then share the shapes: under
// emulation, make test-arm64).
int main(int argc, char **argv)
{
    const int team_only = argc > 1 && strcmp(argv[1], "team") == 0;
    const int float_only = argc > 1 && strcmp(argv[1], "float") == 0;
    const int double_only = argc > 1 && strcmp(argv[1], "double") == 0;
    // Shapes around the block sizes: 1, 3, MR-1 = 5, MR+1 = 7, NR-1 = 15, NR+1 = 17, 801 = KC+1, ...;
    // for the 12-row kernels (narrow, and AVX-512's wide ones) 11, 12, 13 and 22 as well
    static const ptrdiff_t mn_values[] = {1, 3, 5, 6, 7, 8, 11, 12, 13, 14, 15, 16, 17, 22, 33, 100};
    static const ptrdiff_t k_values[] = {1, 3, 17, 257, 801};
    static const ptrdiff_t big_shapes[][3] = {   // m, n, k: several MC, NC or KC blocks, and threads
        {257, 257, 257}, {145, 70, 513}, {300, 31, 100}, {13, 600, 60}, {100, 16, 784}, {784, 16, 100},
        {100, 784, 16}, {10, 30, 784}, {784, 30, 10}, {73, 1030, 9}, {13, 1537, 5}, {37, 20, 1601},
        {150, 52, 801},   // AVX-512's tail after a partial wide micro-panel, two k blocks
        {37, 100, 784}, {25, 24, 784}, {22, 22, 2}, {13, 20, 6},   // its float tail: k mod 4 = 0, 2
    };
    enum { n_mn = sizeof mn_values / sizeof *mn_values, n_k = sizeof k_values / sizeof *k_values };
    enum { n_big = sizeof big_shapes / sizeof *big_shapes };

    if (!double_only) {   // the checks that are not per type run once
        check_team_pool();
        check_team_choice();
        check_special_cases();
        check_isa_choice();
        for (int s = 0; s < n_big; s++) check_team(big_shapes[s][0], big_shapes[s][1], big_shapes[s][2]);
        check_team(1, 1, 1);
    }
    if (team_only) {
        printf("%d passed, %d failed\n", n_passed, n_failed);
        return n_failed != 0;
    }
    levels = fm_gemm_levels(&n_levels);
    if (n_levels > (int)(sizeof level_runs / sizeof *level_runs)) {
        printf("FAIL: %d kernel levels, room for %d\n", n_levels, (int)(sizeof level_runs / sizeof *level_runs));
        return 1;
    }
    for (int l = 0; l < n_levels; l++) level_runs[l] = fm_cpu_runs(levels[l].name);
    for (int single = 0; single <= 1; single++) {
        if ((single && double_only) || (!single && float_only)) continue;
        for (int i = 0; i < n_mn; i++)
            for (int j = 0; j < n_mn; j++)
                for (int p = 0; p < n_k; p++) check_shape(single, mn_values[i], mn_values[j], k_values[p]);
        for (int s = 0; s < n_big; s++) check_shape(single, big_shapes[s][0], big_shapes[s][1], big_shapes[s][2]);
    }
    for (int l = 0; l < n_levels; l++)
        printf("level %s: %s\n", levels[l].name,
               !level_runs[l] ? "not supported by this CPU, skipped" : level_failures[l] == 0 ? "ok" : "FAILED");
    printf("fm_gemm_isa() = %s\n", fm_gemm_isa());
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
