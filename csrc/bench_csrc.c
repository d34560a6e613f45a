// bench_csrc.c: GFLOP/s of the GEMM on the layer shapes of small MLPs (`make -C csrc bench`).
//
// For a batch of b samples through a layer n_in -> n_out (all row-major) the three products are
//   forward    m = b,    k = n_in,  n = n_out   (A and B plain)
//   wgrad      m = n_in, k = b,     n = n_out   (A transposed: rsa = 1, csa = n_in; C := C - 0.01 A B,
//                                                 the SGD step that training applies inside this product)
//   backprop   m = b,    k = n_out, n = n_in    (B transposed: rsb = 1, csb = n_out)
// Each is timed for every level this CPU runs, float and double, 1 and 2 threads; the best of several
// runs of enough calls to last about 20 ms is reported. Optional arguments: "float" or "double".
// First, what a team of two costs: an empty task (wake a worker, wait for it) and a barrier, and one
// core's multiply-add peak at every level: the ceiling that the GEMM's GFLOP/s are to be read against.
// Last, what the seed network's first layer (784 -> 16, batches of 100) costs an epoch of 60,000 rows
// at 1 thread when its batches are read in place from a data set far larger than the caches, as
// training does: its two products on shuffled batches (the rows from memory), and the same products
// on one batch over and over (the rows in cache: the arithmetic alone), each also as a share of the peak.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <sys/mman.h>
#endif

#include "fm_gemm.h"
#include "fm_isa.h"
#include "fm_team.h"
#include "fm_team_pthread.h"

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// One product of the given kind on buffers big enough for it; returns GFLOP/s.
static double time_gemm(int single, const fm_gemm_level *level, int kind, ptrdiff_t b, ptrdiff_t n_in,
                        ptrdiff_t n_out, int nthreads, void *A, void *B, void *C, void *work)
{
    ptrdiff_t m, n, k, rsa, csa, rsb, csb;
    if (kind == 0) m = b, k = n_in, n = n_out, rsa = n_in, csa = 1, rsb = n_out, csb = 1;
    else if (kind == 1) m = n_in, k = b, n = n_out, rsa = 1, csa = n_in, rsb = n_out, csb = 1;
    else m = b, k = n_out, n = n_in, rsa = n_out, csa = 1, rsb = 1, csb = n_out;
    const double flops = 2.0 * m * n * k, alpha = kind == 1 ? -0.01 : 1, beta = kind == 1 ? 1 : 0;
    long calls = 1;
    double best = 1e30;
    for (int run = 0; run < 7; run++) {
        const double start = now();
        for (long c = 0; c < calls; c++) {
            if (single)
                fm_sgemm_at_level(level, m, n, k, (float)alpha, A, rsa, csa, NULL, NULL, B, rsb, csb, (float)beta, C, n,
                                  work, nthreads);
            else
                fm_dgemm_at_level(level, m, n, k, alpha, A, rsa, csa, NULL, NULL, B, rsb, csb, beta, C, n, work, nthreads);
        }
        const double seconds = (now() - start) / calls;
        if (seconds < best) best = seconds;
        if (seconds * calls < 0.02) calls = (long)(0.02 / seconds) + 1, run--;   // too short: redo
    }
    return flops / best * 1e-9;
}

// One core's peak: PEAK_CHAINS independent chains of vector multiply-adds, sum := sum * x + y, enough
// chains to cover a multiply-add's latency on both of a core's units. The sums tend to 1 (no overflow,
// no subnormals), and the caller keeps the result, so nothing can be left out.
#define PEAK_CHAINS 12
#define PEAK_FN(NAME, REAL, BYTES, ATTRIBUTES)                                                          \
    ATTRIBUTES static REAL NAME(long steps)                                                             \
    {                                                                                                   \
        typedef REAL vec __attribute__((vector_size(BYTES)));                                           \
        vec sum[PEAK_CHAINS];                                                                           \
        const vec x = (vec){0} + (REAL)0.999, y = (vec){0} + (REAL)0.001;                              \
        for (int c = 0; c < PEAK_CHAINS; c++) sum[c] = (vec){0} + (REAL)c;                              \
        for (long s = 0; s < steps; s++)                                                                \
            for (int c = 0; c < PEAK_CHAINS; c++) sum[c] = sum[c] * x + y;                              \
        REAL total = 0;                                                                                 \
        for (int c = 0; c < PEAK_CHAINS; c++)                                                           \
            for (size_t l = 0; l < BYTES / sizeof(REAL); l++) total += sum[c][l];                       \
        return total;                                                                                   \
    }
PEAK_FN(peak_s_baseline, float, 16, __attribute__((noinline)))
PEAK_FN(peak_d_baseline, double, 16, __attribute__((noinline)))
#if defined(__x86_64__) || defined(__i386__)
PEAK_FN(peak_s_avx2, float, 32, __attribute__((noinline, target("avx2,fma"))))
PEAK_FN(peak_d_avx2, double, 32, __attribute__((noinline, target("avx2,fma"))))
PEAK_FN(peak_s_avx512, float, 64, __attribute__((noinline, target("avx512f,fma"))))
PEAK_FN(peak_d_avx512, double, 64, __attribute__((noinline, target("avx512f,fma"))))
#endif

// GFLOP/s of one core at the named level (which this CPU runs), float (single) or double: the best of
// 5 runs of 10 million steps; 0 for a level without a peak loop (reference).
static double peak_gflops(int single, const char *level)
{
    int bytes = 16;
    float (*s_fn)(long) = peak_s_baseline;
    double (*d_fn)(long) = peak_d_baseline;
#if defined(__x86_64__) || defined(__i386__)
    if (strcmp(level, "avx512") == 0) bytes = 64, s_fn = peak_s_avx512, d_fn = peak_d_avx512;
    if (strcmp(level, "avx2") == 0) bytes = 32, s_fn = peak_s_avx2, d_fn = peak_d_avx2;
#endif
    if (strcmp(level, "reference") == 0) return 0;
    const long steps = 10000000;
    const double flops = 2.0 * PEAK_CHAINS * (bytes / (single ? sizeof(float) : sizeof(double))) * steps;
    double best = 1e30, kept = 0;
    for (int run = 0; run < 5; run++) {
        const double start = now();
        kept += single ? s_fn(steps) : d_fn(steps);
        const double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    return kept > 0 ? flops / best * 1e-9 : 0;   // kept is always > 0: the sums are used
}

enum { BARRIERS = 1000 };
static void empty_task(void *arg, int id, int count) { (void)arg, (void)id, (void)count; }
static void barrier_task(void *arg, int id, int count)
{
    (void)arg, (void)id;
    for (int i = 0; i < BARRIERS; i++) fm_team_barrier(count);
}

// Microseconds per call of fm_team_run(2, task), the best of 5 runs of `calls` calls.
static double time_team(fm_team_task task, int calls)
{
    double best = 1e30;
    for (int run = 0; run < 5; run++) {
        const double start = now();
        for (int i = 0; i < calls; i++) fm_team_run(2, task, NULL);
        const double seconds = (now() - start) / calls;
        if (seconds < best) best = seconds;
    }
    return best * 1e6;
}

enum { SAMPLES = 60000, PIXELS = 784, HIDDEN = 16, BATCH = 100, EPOCHS = 9 };

// Milliseconds an epoch (the median of EPOCHS) of the first layer's two products at 1 thread, on
// shuffled batches or (same_batch) on the first batch every time.
static double first_layer_epoch(int single, int same_batch, const void *X, int64_t *order, void *W, void *Z,
                                const void *delta, void *work)
{
    double times[EPOCHS];
    unsigned state = 12345;
    for (int epoch = 0; epoch < EPOCHS; epoch++) {
        for (ptrdiff_t i = SAMPLES - 1; i > 0; i--) {   // Fisher-Yates
            state = state * 1103515245u + 12345u;
            const ptrdiff_t j = (ptrdiff_t)(((uint64_t)state * (uint64_t)(i + 1)) >> 32);
            const int64_t t = order[i];
            order[i] = order[j], order[j] = t;
        }
        const double start = now();
        for (ptrdiff_t batch = 0; batch < SAMPLES / BATCH; batch++) {
            const int64_t *rows = order + (same_batch ? 0 : batch * BATCH);
            if (single) {   // Z = X[rows] W, then W := W - 0.01 X[rows]^T delta
                fm_sgemm(BATCH, HIDDEN, PIXELS, 1, X, PIXELS, 1, rows, NULL, W, HIDDEN, 1, 0, Z, HIDDEN, work, 1);
                fm_sgemm(PIXELS, HIDDEN, BATCH, -0.01f, X, 1, PIXELS, NULL, rows, delta, HIDDEN, 1, 1, W, HIDDEN,
                         work, 1);
            } else {
                fm_dgemm(BATCH, HIDDEN, PIXELS, 1, X, PIXELS, 1, rows, NULL, W, HIDDEN, 1, 0, Z, HIDDEN, work, 1);
                fm_dgemm(PIXELS, HIDDEN, BATCH, -0.01, X, 1, PIXELS, NULL, rows, delta, HIDDEN, 1, 1, W, HIDDEN,
                         work, 1);
            }
        }
        times[epoch] = now() - start;
    }
    for (int i = 1; i < EPOCHS; i++)   // insertion sort, for the median
        for (int j = i; j > 0 && times[j] < times[j - 1]; j--) {
            const double t = times[j];
            times[j] = times[j - 1], times[j - 1] = t;
        }
    return times[EPOCHS / 2] * 1e3;
}

// array[i] := value, array holding floats (single) or doubles.
static void set(void *array, size_t i, int single, double value)
{
    if (single) ((float *)array)[i] = (float)value;
    else ((double *)array)[i] = value;
}

static void first_layer(int single)
{
    const size_t size = single ? sizeof(float) : sizeof(double), huge = (size_t)2 << 20;
    const size_t bytes = ((size_t)SAMPLES * PIXELS * size + huge - 1) / huge * huge;
    void *X = aligned_alloc(huge, bytes);
    if (X == NULL) {
        printf("%-6s skipped: no memory for the %zu MB data set\n", single ? "float" : "double", bytes >> 20);
        return;
    }
    void *W = malloc(PIXELS * HIDDEN * size), *Z = malloc(BATCH * HIDDEN * size);
    void *delta = malloc(BATCH * HIDDEN * size);
    void *work = malloc(fm_dgemm_workspace_size(PIXELS, HIDDEN, PIXELS, 1) * sizeof(double));
    int64_t *order = malloc(SAMPLES * sizeof *order);
#ifdef MADV_HUGEPAGE
    madvise(X, bytes, MADV_HUGEPAGE);   // as NumPy does for large arrays
#endif
    for (size_t i = 0; i < (size_t)SAMPLES * PIXELS; i++)
        set(X, i, single, (double)(i % 255) / 255);   // pixels in [0, 1], as the data sets hold
    for (size_t i = 0; i < PIXELS * HIDDEN; i++) set(W, i, single, 0.01);
    for (size_t i = 0; i < BATCH * HIDDEN; i++) set(delta, i, single, 1e-3);
    for (int i = 0; i < SAMPLES; i++) order[i] = i;
    const double flops = 2 * 2.0 * BATCH * PIXELS * HIDDEN * (SAMPLES / BATCH) * 1e-9;
    const double from_memory = first_layer_epoch(single, 0, X, order, W, Z, delta, work);
    const double in_cache = first_layer_epoch(single, 1, X, order, W, Z, delta, work);
    const double peak = peak_gflops(single, fm_gemm_isa());
    printf("%-6s %10.1f ms %6.1f GFLOP/s %4.0f%% %10.1f ms %6.1f GFLOP/s %4.0f%%\n",
           single ? "float" : "double", from_memory, flops / from_memory * 1e3, flops / from_memory * 1e5 / peak,
           in_cache, flops / in_cache * 1e3, flops / in_cache * 1e5 / peak);
    free(X), free(W), free(Z), free(delta), free(work), free(order);
}

int main(int argc, char **argv)
{
    static const ptrdiff_t layers[][3] = {   // b, n_in, n_out
        {100, 784, 16}, {100, 16, 16}, {100, 16, 10}, {10, 784, 30}, {10, 30, 10},
        {128, 784, 256}, {128, 256, 128}, {128, 128, 10}, {256, 784, 1024}, {256, 1024, 1024}, {256, 1024, 10},
    };
    static const char *kinds[] = {"forward", "wgrad", "backprop"};
    const size_t max_values = 1024 * 1024 + 64;
    void *A = calloc(max_values, sizeof(double)), *B = calloc(max_values, sizeof(double));
    void *C = calloc(max_values, sizeof(double));
    void *work = malloc(fm_dgemm_workspace_size(1024, 1024, 1024, 2) * sizeof(double));
    for (size_t i = 0; i < max_values; i++) ((float *)A)[i] = ((float *)B)[i] = 0.5f;   // finite in both types

    fm_team_set_starter(fm_start_pthread);
    printf("team of 2: %.2f us per empty task, %.3f us per barrier\n\n", time_team(empty_task, 20000),
           time_team(barrier_task, 20) / BARRIERS);
    int n_levels;
    const fm_gemm_level *levels = fm_gemm_levels(&n_levels);
    printf("One core's multiply-add peak, GFLOP/s:");
    for (int l = 0; l < n_levels; l++)
        if (fm_cpu_runs(levels[l].name) && strcmp(levels[l].name, "reference") != 0)
            printf("  %s %.1f float, %.1f double", levels[l].name, peak_gflops(1, levels[l].name),
                   peak_gflops(0, levels[l].name));
    printf("\n\nGFLOP/s, fm_gemm_isa() = %s\n", fm_gemm_isa());
    for (int single = 1; single >= 0; single--) {
        if (argc > 1 && strcmp(argv[1], single ? "float" : "double") != 0) continue;
        printf("\n%-6s %-22s %-8s", single ? "float" : "double", "layer (b: n_in->n_out)", "product");
        for (int l = 0; l < n_levels; l++)
            if (fm_cpu_runs(levels[l].name) && strcmp(levels[l].name, "reference") != 0)
                printf(" %9s/1 %9s/2", levels[l].name, levels[l].name);
        printf("\n");
        for (size_t s = 0; s < sizeof layers / sizeof *layers; s++) {
            for (int kind = 0; kind < 3; kind++) {
                char layer[64];
                snprintf(layer, sizeof layer, "%td: %td->%td", layers[s][0], layers[s][1], layers[s][2]);
                printf("%-6s %-22s %-8s", "", layer, kinds[kind]);
                for (int l = 0; l < n_levels; l++) {
                    if (!fm_cpu_runs(levels[l].name) || strcmp(levels[l].name, "reference") == 0) continue;
                    for (int nthreads = 1; nthreads <= 2; nthreads++)
                        printf(" %11.1f", time_gemm(single, &levels[l], kind, layers[s][0], layers[s][1],
                                                    layers[s][2], nthreads, A, B, C, work));
                }
                printf("\n");
                fflush(stdout);
            }
        }
    }
    free(A), free(B), free(C), free(work);

    printf("\nThe first layer of C1 (784 -> 16, batches of %d read in place): its forward and weight-gradient\n"
           "products, an epoch of %d rows at 1 thread (%% of one core's %s peak)\n", BATCH, SAMPLES,
           fm_gemm_isa());
    printf("%-6s %33s %33s\n", "", "rows from memory", "rows in cache");
    for (int single = 1; single >= 0; single--)
        if (argc <= 1 || strcmp(argv[1], single ? "float" : "double") == 0) first_layer(single);
    return 0;
}
