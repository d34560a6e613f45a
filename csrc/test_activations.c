// test_activations.c: every activation level this CPU runs, float and double, against libm in long double.
//   gcc -O3 -std=gnu11 -pthread -Wall -Wextra -o /tmp/test_activations csrc/test_activations.c
//       csrc/fm_activations*.c -lm && /tmp/test_activations
// Inputs: a grid, random values, and the awkward ones (0, ±tiny, ±88, ±100, ±1e30, ...), in rows of
// 1, 3, 16, 17 and 257 values so that every vector tail is covered, with and without a bias.
// Prints each failing case and then "N passed, N failed"; the exit code is 1 if any case failed.
#include <fenv.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_activations.h"
#include "fm_isa.h"

static int n_passed, n_failed;
static long double worst_relative_error[FM_EXP + 1];   // of one level and type, for the summary

static void check(int ok, const char *what)
{
    if (ok) {
        n_passed++;
    } else {
        n_failed++;
        printf("FAILED: %s\n", what);
    }
}

// float or double, seen through long double.
typedef struct {
    const char *name;
    size_t size;
    long double rel_tol;   // allowed relative error of a result
    long double eps;       // machine epsilon
    long double tiny;      // the smallest normal number: results below it may flush to 0
    long double largest;   // the largest finite value
} real_type;

static const real_type float_type = {"float", sizeof(float), 1e-6L, FLT_EPSILON, FLT_MIN, FLT_MAX};
static const real_type double_type = {"double", sizeof(double), 1e-14L, DBL_EPSILON, DBL_MIN, DBL_MAX};

static long double get(const real_type *t, const void *p, ptrdiff_t i)
{
    return t->size == sizeof(float) ? ((const float *)p)[i] : ((const double *)p)[i];
}

// Stores v rounded to the type.
static void set(const real_type *t, void *p, ptrdiff_t i, long double v)
{
    if (t->size == sizeof(float))
        ((float *)p)[i] = (float)v;
    else
        ((double *)p)[i] = (double)v;
}

static void bias_activation(const fm_activation_level *level, const real_type *t, ptrdiff_t rows,
                            ptrdiff_t cols, void *Z, const void *b, int activation)
{
    if (t->size == sizeof(float))
        level->sbias_activation(rows, cols, Z, b, activation);
    else
        level->dbias_activation(rows, cols, Z, b, activation);
}

static void activation_derivative(const fm_activation_level *level, const real_type *t, ptrdiff_t size,
                                  const void *A, void *D, int activation)
{
    if (t->size == sizeof(float))
        level->sactivation_derivative(size, A, D, activation);
    else
        level->dactivation_derivative(size, A, D, activation);
}

// A fixed stream of uniform numbers in [0, 1) (splitmix64), so that every run tests the same values.
static double uniform(void)
{
    static unsigned long long state = 12345;
    unsigned long long z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return (double)((z ^ (z >> 31)) >> 11) * 0x1p-53;
}

// The exact functions, in long double.
static long double sigmoid_exact(long double z)
{
    return z >= 0 ? 1 / (1 + expl(-z)) : expl(z) / (1 + expl(z));
}

static long double activation_exact(int activation, long double z)
{
    switch (activation) {
    case FM_SIGMOID: return sigmoid_exact(z);
    case FM_TANH: return tanhl(z);
    case FM_RELU: return z < 0 ? 0 : z;
    case FM_EXP: return expl(z);
    default: return z;
    }
}

// The inputs of the forward tests: finite in the type, awkward values first.
static ptrdiff_t make_inputs(const real_type *t, long double *values)
{
    static const long double awkward[] = {
        0, 1e-320L, 1e-45L, 1e-38L, 1e-30L, 1e-8L, 1e-4L, 0.1L, 0.34L, 0.35L, 0.5L, 0.625L, 0.7L, 1, 2, 5,
        9, 9.1L, 10, 17, 19, 20, 40, 44, 44.4L, 50, 87, 87.33L, 87.4L, 88, 88.7228L, 88.72284L, 89, 100,
        700, 708.3L, 709, 709.78L, 709.7828L, 710, 745, 1e4L, 1e30L, 1e300L};
    ptrdiff_t n = 0;
    for (size_t i = 0; i < sizeof awkward / sizeof awkward[0]; i++)
        if (awkward[i] <= t->largest) {
            values[n++] = awkward[i];
            values[n++] = -awkward[i];
        }
    for (int i = -25 * 64; i <= 25 * 64; i++) values[n++] = i / 64.0L;    // a grid on [−25, 25]
    for (int i = -1024; i <= 1024; i++) values[n++] = i / 1048576.0L;     // and a fine one near 0
    for (int i = 0; i < 4096; i++) values[n++] = 200 * uniform() - 100;
    const double max_exponent = t->size == sizeof(float) ? 30 : 300;
    for (int i = 0; i < 4096; i++)                                        // magnitudes 1e-30 .. 1e30
        values[n++] = (uniform() < 0.5 ? -1 : 1) * powl(10, (2 * uniform() - 1) * max_exponent);
    return n;
}
enum { max_inputs = 100 + 3201 + 2049 + 2 * 4096 };

// Z := σ(Z + b) at one level against the exact σ, for rows of cols values cycling through the inputs.
// Softmax may also lose |z − max z|·eps/2 of relative accuracy: z − max z is rounded before e^x, and
// e^x has condition number |x|.
static void check_forward(const fm_activation_level *level, const real_type *t, int activation,
                          ptrdiff_t cols, int with_bias, const long double *inputs, ptrdiff_t n_inputs)
{
    const ptrdiff_t rows = (n_inputs + cols - 1) / cols, size = rows * cols;
    char *Z = malloc(size * t->size), *b = malloc(cols * t->size);
    long double *z = malloc(size * sizeof *z);
    char z_plus_b[sizeof(double)];
    for (ptrdiff_t j = 0; j < cols; j++) set(t, b, j, 2 * uniform() - 1);
    for (ptrdiff_t i = 0; i < size; i++) {
        set(t, Z, i, inputs[i % n_inputs]);
        z[i] = get(t, Z, i);
        if (with_bias) {   // z + b, rounded as the kernel rounds it
            set(t, z_plus_b, 0, z[i] + get(t, b, i % cols));
            z[i] = get(t, z_plus_b, 0);
        }
    }

    feclearexcept(FE_ALL_EXCEPT);
    bias_activation(level, t, rows, cols, Z, with_bias ? b : NULL, activation);
    const int flags = fetestexcept(FE_INVALID | FE_OVERFLOW | FE_DIVBYZERO);

    long double worst = 0;   // the largest error, in units of the tolerance
    ptrdiff_t worst_i = 0;
    for (ptrdiff_t i = 0; i < rows; i++) {
        const long double *zi = z + i * cols;
        long double largest = zi[0], total = 0;
        for (ptrdiff_t j = 1; j < cols; j++) largest = fmaxl(largest, zi[j]);
        for (ptrdiff_t j = 0; j < cols; j++) total += expl(zi[j] - largest);
        for (ptrdiff_t j = 0; j < cols; j++) {
            long double exact, rel_tol = t->rel_tol;
            if (activation == FM_SOFTMAX) {
                exact = expl(zi[j] - largest) / total;
                rel_tol += fabsl(zi[j] - largest) * t->eps / 2;
            } else {
                exact = activation_exact(activation, zi[j]);
            }
            const long double got = get(t, Z, i * cols + j);
            long double error = fabsl(got - exact) / (rel_tol * fabsl(exact) + t->tiny);
            if (!isfinite(got)) error = INFINITY;
            if (exact > t->largest)   // e^z past the largest finite number: +∞, as exp() gives
                error = got == INFINITY ? 0 : INFINITY;
            if (fabsl(exact) > 1e6L * t->tiny && exact <= t->largest)
                worst_relative_error[activation] = fmaxl(worst_relative_error[activation], fabsl(got / exact - 1));
            // Saturation must be exact: sigmoid 0 or 1, tanh ±1.
            if ((activation == FM_SIGMOID || activation == FM_TANH) && fabsl(zi[j]) > 1000 &&
                got != (activation == FM_TANH ? copysignl(1, zi[j]) : zi[j] > 0))
                error = INFINITY;
            if (error > worst) worst = error, worst_i = i * cols + j;
        }
    }
    char what[256];
    snprintf(what, sizeof what, "%s %s activation %d, rows of %td, bias %d: worst error %.3Lg x tolerance at z = %.9Lg (got %.9Lg)%s",
             level->name, t->name, activation, cols, with_bias, worst, z[worst_i], get(t, Z, worst_i),
             flags ? "; raised an invalid, overflow or divide-by-zero flag" : "");
    check(worst <= 1 && !flags, what);
    free(Z), free(b), free(z);
}

// D := D ⊙ σ'(z) at one level against the exact product, A holding outputs that σ can produce.
static void check_derivative(const fm_activation_level *level, const real_type *t, int activation, ptrdiff_t size)
{
    char *A = malloc(size * t->size), *D = malloc(size * t->size), *D_in = malloc(size * t->size);
    for (ptrdiff_t i = 0; i < size; i++) {
        const long double u = uniform();
        long double a = activation == FM_SIGMOID ? u : activation == FM_TANH ? 2 * u - 1
                        : activation == FM_EXP ? 10 * u : 10 * u - 5;
        if (i % 7 == 0) a = (activation == FM_SIGMOID ? 1 : -1) * (1 - t->eps * (i % 5));   // near ±1 or 0
        if (activation == FM_RELU && i % 11 == 0) a = 0;
        set(t, A, i, a);
        set(t, D_in, i, 6 * uniform() - 3);
    }
    memcpy(D, D_in, size * t->size);
    activation_derivative(level, t, size, A, D, activation);

    long double worst = 0;
    for (ptrdiff_t i = 0; i < size; i++) {
        const long double a = get(t, A, i), d = get(t, D_in, i);
        long double exact = d;
        if (activation == FM_SIGMOID) exact = d * a * (1 - a);
        if (activation == FM_TANH) exact = d * (1 - a * a);
        if (activation == FM_RELU) exact = a > 0 ? d : 0;
        if (activation == FM_EXP) exact = d * a;
        const long double error = fabsl(get(t, D, i) - exact) / (t->rel_tol * fabsl(exact) + t->tiny);
        if (!(error <= worst)) worst = isnan(error) ? INFINITY : error;
    }
    char what[160];
    snprintf(what, sizeof what, "%s %s derivative of activation %d, size %td: worst error %.3Lg x tolerance",
             level->name, t->name, activation, size, worst);
    check(worst <= 1, what);
    free(A), free(D), free(D_in);
}

// NaN in, NaN out (relu included, so that a diverging network stays visible); softmax: the whole row,
// and no other row (two rows of 3: a block narrower than a vector).
static void check_nan(const fm_activation_level *level, const real_type *t)
{
    for (int activation = FM_SIGMOID; activation <= FM_EXP; activation++) {
        char Z[6 * sizeof(double)];
        set(t, Z, 0, 1), set(t, Z, 1, NAN), set(t, Z, 2, -1);
        set(t, Z, 3, 1), set(t, Z, 4, 0.5), set(t, Z, 5, -1);
        bias_activation(level, t, 2, 3, Z, NULL, activation);
        int ok = isnan(get(t, Z, 1)) &&
                 (activation != FM_SOFTMAX || (isnan(get(t, Z, 0)) && isnan(get(t, Z, 2))));
        for (int i = 3; i < 6; i++) ok &= !isnan(get(t, Z, i));
        char what[96];
        snprintf(what, sizeof what, "%s %s activation %d keeps NaN", level->name, t->name, activation);
        check(ok, what);
    }
}

// A block of rows gives, bit for bit, what the rows give one call each (a team of threads may cut a layer's
// output either way, and the results must not depend on it); rows narrower than a vector take their own
// path through the block. With and without bias, every activation.
static void check_block_equals_rows(const fm_activation_level *level, const real_type *t, ptrdiff_t cols)
{
    enum { ROWS = 7, MAX_COLS = 40 };
    char block[ROWS * MAX_COLS * sizeof(double)], by_rows[sizeof block], b[MAX_COLS * sizeof(double)];
    for (int activation = FM_IDENTITY; activation <= FM_EXP; activation++)
        for (int with_bias = 0; with_bias <= 1; with_bias++) {
            for (ptrdiff_t i = 0; i < ROWS * cols; i++) {
                const double z = (double)((i * 37) % 101 - 50) / 7;
                set(t, block, i, z), set(t, by_rows, i, z);
            }
            for (ptrdiff_t j = 0; j < cols; j++) set(t, b, j, (double)(j % 5) / 3 - 0.6);
            bias_activation(level, t, ROWS, cols, block, with_bias ? b : NULL, activation);
            for (ptrdiff_t i = 0; i < ROWS; i++)
                bias_activation(level, t, 1, cols, by_rows + i * cols * t->size, with_bias ? b : NULL, activation);
            char what[128];
            snprintf(what, sizeof what, "%s %s activation %d, rows of %td, bias %d: a block differs from its rows",
                     level->name, t->name, activation, cols, with_bias);
            check(memcmp(block, by_rows, (size_t)(ROWS * cols) * t->size) == 0, what);
        }
}

// The public functions call the level that fm_activation_level_current chose, and FASTMLP_ISA is obeyed.
static void check_dispatch(void)
{
    const fm_activation_level *current = fm_activation_level_current();
    check(fm_cpu_runs(current->name) && strcmp(current->name, fm_activation_isa()) == 0,
          "the current level is supported and named by fm_activation_isa");
    const char *wanted = getenv("FASTMLP_ISA");
    int count;
    const fm_activation_level *levels = fm_activation_levels(&count);
    for (int i = 0; wanted != NULL && i < count; i++)
        if (strcmp(wanted, levels[i].name) == 0 && fm_cpu_runs(levels[i].name))
            check(current == &levels[i], "FASTMLP_ISA picks the level it names");

    float Z[19], Z_level[19];
    for (int j = 0; j < 19; j++) Z[j] = Z_level[j] = (float)(j - 9) / 3;
    fm_sbias_activation(1, 19, Z, NULL, FM_TANH);
    current->sbias_activation(1, 19, Z_level, NULL, FM_TANH);
    check(memcmp(Z, Z_level, sizeof Z) == 0, "fm_sbias_activation calls the current level");
}

int main(void)
{
    static long double inputs[max_inputs];
    const real_type *types[] = {&float_type, &double_type};
    const ptrdiff_t row_lengths[] = {1, 3, 10, 16, 17, 257};
    const ptrdiff_t sizes[] = {1, 3, 17, 257, 1600, 4099};
    int count;
    const fm_activation_level *levels = fm_activation_levels(&count);

    for (int l = 0; l < count; l++) {
        if (!fm_cpu_runs(levels[l].name)) {
            printf("skipped %s: this CPU lacks it\n", levels[l].name);
            continue;
        }
        for (int k = 0; k < 2; k++) {
            const ptrdiff_t n_inputs = make_inputs(types[k], inputs);
            memset(worst_relative_error, 0, sizeof worst_relative_error);
            for (int activation = FM_IDENTITY; activation <= FM_EXP; activation++)
                for (size_t c = 0; c < sizeof row_lengths / sizeof row_lengths[0]; c++)
                    for (int with_bias = 0; with_bias <= 1; with_bias++)
                        check_forward(&levels[l], types[k], activation, row_lengths[c], with_bias, inputs, n_inputs);
            for (int activation = FM_IDENTITY; activation <= FM_EXP; activation++)
                for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++)
                    check_derivative(&levels[l], types[k], activation, sizes[s]);
            check_nan(&levels[l], types[k]);
            for (ptrdiff_t cols = 1; cols <= 40; cols++)
                check_block_equals_rows(&levels[l], types[k], cols);
            printf("%-8s %-6s worst relative error: sigmoid %.2Lg, tanh %.2Lg, relu %.2Lg, softmax %.2Lg, exp %.2Lg\n",
                   levels[l].name, types[k]->name, worst_relative_error[FM_SIGMOID], worst_relative_error[FM_TANH],
                   worst_relative_error[FM_RELU], worst_relative_error[FM_SOFTMAX], worst_relative_error[FM_EXP]);
        }
    }
    check_dispatch();
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
