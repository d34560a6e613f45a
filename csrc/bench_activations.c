// bench_activations.c: nanoseconds per element of Z := σ(Z + b) at every level this CPU runs, against a
// plain scalar loop over libm (expf/tanhf, exp/tanh: what fastmlp/_kernels.pyx does today).
//   gcc -O3 -std=gnu11 -pthread -Wall -Wextra -o /tmp/bench_activations csrc/bench_activations.c
//       csrc/fm_activations*.c -lm && /tmp/bench_activations
// Shape: a batch of 100 rows of 16 units (1,600 values, in L1), as in a small MLP's hidden layer. Each
// call works on a fresh copy of the same pre-activations; the time of the copy alone is taken off.
// Then the double sigmoid on 100 rows of 16 and of 10 values, at every level.
#include <math.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "fm_activations.h"
#include "fm_isa.h"

enum { rows = 100, cols = 16, size = rows * cols, calls = 2000, trials = 7 };

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// The scalar loops the vector kernels replace.
static void scalar_bias_activation(float *Z, const float *b, int activation)
{
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < cols; j++) {
            const float z = Z[i * cols + j] + b[j];
            float e;
            if (activation == FM_TANH) {
                Z[i * cols + j] = tanhf(z);
            } else if (z >= 0) {
                Z[i * cols + j] = 1 / (1 + expf(-z));
            } else {
                e = expf(z);
                Z[i * cols + j] = e / (1 + e);
            }
        }
}

typedef struct {
    const fm_activation_level *level;   // NULL: the scalar loop, or (with copy_only) nothing at all
    int activation, copy_only;
} contender;

static float Z0[size], Z[size], b[cols];

// The fastest of a few trials, in nanoseconds per element, of one copy plus one call.
static double ns_per_element(contender c)
{
    double best = INFINITY;
    for (int trial = 0; trial < trials; trial++) {
        const double start = now();
        for (int call = 0; call < calls; call++) {
            memcpy(Z, Z0, sizeof Z);
            if (c.copy_only)
                __asm__ volatile("" ::"r"(Z) : "memory");   // keep the copy
            else if (c.level == NULL)
                scalar_bias_activation(Z, b, c.activation);
            else
                c.level->sbias_activation(rows, cols, Z, b, c.activation);
        }
        const double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    return 1e9 * best / ((double)calls * size);
}

// The same for the double sigmoid on rows of `width` values (16, or 10: a 10-class output, which does
// not end on an AVX-512 vector of 8 doubles); level NULL: the copy alone.
static double D0[size], D[size], db[cols];
static double double_sigmoid_ns_per_element(const fm_activation_level *level, int width)
{
    double best = INFINITY;
    for (int trial = 0; trial < trials; trial++) {
        const double start = now();
        for (int call = 0; call < calls; call++) {
            memcpy(D, D0, rows * width * sizeof(double));
            if (level == NULL)
                __asm__ volatile("" ::"r"(D) : "memory");
            else
                level->dbias_activation(rows, width, D, db, FM_SIGMOID);
        }
        const double seconds = now() - start;
        if (seconds < best) best = seconds;
    }
    return 1e9 * best / ((double)calls * rows * width);
}

int main(void)
{
    for (int i = 0; i < size; i++) Z0[i] = (float)(8 * sin(0.37 * i));   // values in [−8, 8]
    for (int j = 0; j < cols; j++) b[j] = (float)(0.1 * j - 0.8);

    const double copy = ns_per_element((contender){NULL, 0, 1});
    const int activations[] = {FM_SIGMOID, FM_TANH, FM_RELU, FM_SOFTMAX};
    const char *names[] = {"sigmoid", "tanh", "relu", "softmax"};
    int count;
    const fm_activation_level *levels = fm_activation_levels(&count);
    printf("float32, %d x %d, ns per element (the copy of Z, %.3f ns, taken off)\n", rows, cols, copy);
    printf("%-18s", "level");
    for (int a = 0; a < 4; a++) printf("%10s", names[a]);
    printf("\n%-18s%10.3f%10.3f%10s%10s\n", "scalar libm loop", ns_per_element((contender){NULL, FM_SIGMOID, 0}) - copy,
           ns_per_element((contender){NULL, FM_TANH, 0}) - copy, "-", "-");
    for (int l = 0; l < count; l++) {
        if (!fm_cpu_runs(levels[l].name)) continue;
        printf("%-18s", levels[l].name);
        for (int a = 0; a < 4; a++) printf("%10.3f", ns_per_element((contender){&levels[l], activations[a], 0}) - copy);
        printf("\n");
    }

    for (int i = 0; i < size; i++) D0[i] = 8 * sin(0.37 * i);
    for (int j = 0; j < cols; j++) db[j] = 0.1 * j - 0.8;
    const int widths[] = {16, 10};
    printf("\nfloat64 sigmoid, %d rows, ns per element (the copy taken off)\n%-18s", rows, "level");
    for (int w = 0; w < 2; w++) printf("%7d wide", widths[w]);
    printf("\n");
    for (int l = 0; l < count; l++) {
        if (!fm_cpu_runs(levels[l].name)) continue;
        printf("%-18s", levels[l].name);
        for (int w = 0; w < 2; w++)
            printf("%12.3f", double_sigmoid_ns_per_element(&levels[l], widths[w]) -
                                 double_sigmoid_ns_per_element(NULL, widths[w]));
        printf("\n");
    }
    return 0;
}
