// bench_csrc.c: GFLOP/s of the GEMM on the layer shapes of small MLPs (`make -C csrc bench`).
//
// For a batch of b samples through a layer n_in -> n_out (all row-major) the three products are
//   forward    m = b,    k = n_in,  n = n_out   (A and B plain)
//   wgrad      m = n_in, k = b,     n = n_out   (A transposed: rsa = 1, csa = n_in; C := C - 0.01 A B,
//                                                 the SGD step that training applies inside this product)
//   backprop   m = b,    k = n_out, n = n_in    (B transposed: rsb = 1, csb = n_out)
// Each is timed for every level this CPU runs, float and double, 1 and 2 threads; the best of several
// runs of enough calls to last about 20 ms is reported. Optional arguments: "float" or "double".
// First, what a team of two costs: an empty task (wake a worker, wait for it) and a barrier.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

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
    printf("GFLOP/s, fm_gemm_isa() = %s\n", fm_gemm_isa());
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
    return 0;
}
