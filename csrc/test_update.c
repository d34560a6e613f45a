// test_update.c: every update-kernel level this CPU runs, float and double, against plain loops in long
// double (`make -C csrc test`). Sizes 0, 1, 3, around every vector length (4, 8, 16 floats) and longer, so
// that every tail is covered; each optimizer (sgd, momentum, nesterov, adam; momentum also with the new
// velocity computed already; each also with the L2 term added to G as it is read), its state's flush of
// subnormal values to 0, both penalties, and the column sums, which add the rows in order and so must
// match a plain loop in the same type bit for bit.
// Writing past the arrays is caught by guard values; the public functions must call the level the
// activations chose (one table of levels for both). Prints each failure, then "N passed, N failed";
// the exit code is 1 if any case failed.
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fm_isa.h"
#include "fm_activations.h"   // the table of levels (and, through it, fm_update.h)

static int n_passed, n_failed;

static void check(int ok, const char *what, const char *level, const char *type, ptrdiff_t size, int variant)
{
    if (ok) {
        n_passed++;
        return;
    }
    if (n_failed++ < 20) printf("FAIL %s: level %s, %s, size %td, variant %d\n", what, level, type, size, variant);
}

static double uniform(unsigned *state)   // in [-1, 1), a fixed sequence
{
    *state = *state * 1664525u + 1013904223u;
    return (double)(*state >> 8) / (1 << 23) - 1;
}

enum { GUARD = 4 };
#define SENTINEL 777.0

// The tests, written once for float and once for double: x is the BLAS prefix, EPS the type's epsilon.
#define FM_DEFINE_TESTS(x, REAL, EPS)                                                                  \
    /* An array of size values plus GUARD sentinels; value(i) in [-1, 1), or positive for Adam's S2. */ \
    static REAL *x##array(ptrdiff_t size, unsigned *state, int positive)                             \
    {                                                                                              \
        REAL *p = malloc((size_t)(size + GUARD) * sizeof *p);                                      \
        for (ptrdiff_t i = 0; i < size; i++) {                                                     \
            const double u = uniform(state);                                                       \
            p[i] = (REAL)(positive ? u * u : i % 7 == 3 ? 0 : u);                                  \
        }                                                                                          \
        for (int g = 0; g < GUARD; g++) p[size + g] = (REAL)SENTINEL;                              \
        return p;                                                                                  \
    }                                                                                              \
    static int x##close(const REAL *got, const long double *want, const long double *scale, ptrdiff_t size) \
    {                                                                                              \
        for (ptrdiff_t i = 0; i < size; i++)                                                       \
            if (!(fabsl(got[i] - want[i]) <= 4 * EPS * scale[i] + 1e-300L)) return 0;              \
        for (int g = 0; g < GUARD; g++)                                                            \
            if (got[size + g] != (REAL)SENTINEL) return 0;                                         \
        return 1;                                                                                  \
    }                                                                                              \
    /* variant 0: sgd, 1: momentum, 2: nesterov, 3: adam, 4: momentum with G == NULL (S1 holds the \
       new velocity already) */                                                                    \
    static void x##check_update(const fm_activation_level *level, ptrdiff_t size, int variant, double l2) \
    {                                                                                              \
        unsigned state = (unsigned)(size * 31 + variant);                                          \
        REAL *P = x##array(size, &state, 0), *G = x##array(size, &state, 0);                       \
        REAL *S1 = x##array(size, &state, 0), *S2 = x##array(size, &state, 1);                     \
        long double *want_p = malloc((size_t)(size + 1) * 3 * sizeof *want_p);                     \
        long double *want_s1 = want_p + size + 1, *scale = want_s1 + size + 1;                     \
        const fm_step step = {variant == 2 ? FM_NESTEROV : variant == 3 ? FM_ADAM : FM_SGD, 0.3, 0.9, \
                              0.9, 0.999, 1e-8, 1 - 0.9 * 0.9, 1 - 0.999 * 0.999, l2};                 \
        long double want_s2_0 = 0, scale_s2_0 = 0;                                                 \
        for (ptrdiff_t i = 0; i < size; i++) {                                                     \
            /* with l2 the gradient is G + l2 P, the penalty's term added as G is read */          \
            const long double p = P[i], g = G[i] + (REAL)l2 * p, s1 = S1[i], s2 = S2[i];           \
            const long double eta = (REAL)0.3, mu = (REAL)0.9, rounding = 2 * fabsl((REAL)l2 * p);  \
            if (variant == 0) {                                                                    \
                want_p[i] = p - eta * g, scale[i] = fabsl(p) + fabsl(eta * g) + eta * rounding;    \
            } else if (variant == 4) {                                                             \
                want_s1[i] = s1, want_p[i] = p + s1, scale[i] = fabsl(p) + fabsl(s1);               \
            } else if (variant == 1 || variant == 2) {                                             \
                want_s1[i] = mu * s1 - eta * g;                                                    \
                want_p[i] = variant == 1 ? p + want_s1[i] : p + mu * want_s1[i] - eta * g;          \
                scale[i] = fabsl(p) + 4 * (fabsl(s1) + fabsl(eta * g)) + 4 * eta * rounding;        \
            } else {                                                                               \
                const long double b1 = (REAL)0.9, b2 = (REAL)0.999;                                \
                const long double m = b1 * s1 + (1 - b1) * g, v = b2 * s2 + (1 - b2) * g * g;       \
                want_s1[i] = m;                                                                    \
                if (i == 0) want_s2_0 = v, scale_s2_0 = fabsl(b2 * s2) + fabsl((1 - b2) * g * g);   \
                want_p[i] = p - eta * (m / (REAL)step.correction1) /                               \
                                    (sqrtl(v / (REAL)step.correction2) + (REAL)1e-8);              \
                scale[i] = fabsl(p) + 8 * fabsl(p - want_p[i]) + EPS * fabsl(m) * 8;               \
            }                                                                                      \
        }                                                                                          \
        level->x##update(size, P, variant == 4 ? NULL : G, variant == 0 ? NULL : S1, variant == 3 ? S2 : NULL, \
                         &step);                                                                   \
        int ok = x##close(P, want_p, scale, size);                                                 \
        if (variant != 0) {                                                                        \
            for (ptrdiff_t i = 0; i < size; i++) scale[i] = 4 * (fabsl(want_s1[i]) + 1);           \
            ok &= x##close(S1, want_s1, scale, size);                                              \
        }                                                                                          \
        if (variant == 3 && size > 0) ok &= fabsl(S2[0] - want_s2_0) <= 4 * EPS * scale_s2_0 + 1e-300L; \
        check(ok, l2 ? "update with l2 differs from the plain loop" : "update differs from the plain loop", \
              level->name, #REAL, size, variant);                                                  \
        free(P), free(G), free(S1), free(S2), free(want_p);                                        \
    }                                                                                              \
    /* Optimizer state whose new value is below the smallest normal number (MIN) is stored, and used, \
       as 0 (variants 1-3; G = 0, so the state only decays by mu or beta); NaN and normal values are   \
       kept, and a parameter whose state became 0 does not move. */                                \
    static void x##check_flush(const fm_activation_level *level, REAL MIN, int variant)            \
    {                                                                                              \
        enum { SIZE = 19 };   /* a whole vector at every level, and a tail */                      \
        const REAL start[] = {MIN, -MIN, MIN / 4, -MIN / 1024, 1, -1, (REAL)NAN, 0, MIN * 2};       \
        const REAL decay = variant == 3 ? (REAL)0.9 : (REAL)0.5;  /* beta1, mu */                  \
        REAL P[SIZE], G[SIZE], S1[SIZE], S2[SIZE];                                                 \
        for (int i = 0; i < SIZE; i++)                                                             \
            P[i] = 1, G[i] = 0, S1[i] = start[i % 9], S2[i] = fabs(start[(i + 4) % 9]);              \
        const fm_step step = {variant == 2 ? FM_NESTEROV : variant == 3 ? FM_ADAM : FM_SGD, 0.3, 0.5, \
                              0.9, 0.75, 1e-8, 1 - 0.9, 1 - 0.75, 0};                                 \
        level->x##update(SIZE, P, G, S1, variant == 3 ? S2 : NULL, &step);                          \
        int ok = 1;                                                                                \
        for (int i = 0; i < SIZE; i++) {                                                           \
            const REAL s1 = start[i % 9], want = decay * s1;                                       \
            const REAL s2 = fabs(start[(i + 4) % 9]), want2 = (REAL)0.75 * s2;                     \
            const int nan_state = isnan(s1) || (variant == 3 && isnan(s2));                        \
            if (isnan(s1)) ok &= isnan(S1[i]);                                                     \
            else if (fabs(want) < MIN) ok &= S1[i] == 0 && (nan_state || P[i] == 1);               \
            else ok &= fabs(S1[i] - want) <= 4 * EPS * fabs(want);                                 \
            ok &= nan_state ? isnan(P[i]) : !isnan(P[i]);                                          \
            if (variant == 3) {                                                                    \
                if (isnan(s2)) ok &= isnan(S2[i]);                                                 \
                else if (want2 < MIN) ok &= S2[i] == 0;                                            \
                else ok &= fabs(S2[i] - want2) <= 4 * EPS * want2;                                 \
            }                                                                                      \
        }                                                                                          \
        check(ok, "subnormal optimizer state is not flushed to 0", level->name, #REAL, SIZE, variant); \
    }                                                                                              \
    /* variant 0: l2 only, 1: l1 only, 2: both, 3: neither (G untouched) */                        \
    static void x##check_penalty(const fm_activation_level *level, ptrdiff_t size, int variant)    \
    {                                                                                              \
        unsigned state = (unsigned)(size * 17 + variant);                                          \
        REAL *G = x##array(size, &state, 0), *W = x##array(size, &state, 0);                       \
        long double *want = malloc((size_t)(size + 1) * 2 * sizeof *want), *scale = want + size + 1; \
        const REAL l2 = variant == 0 || variant == 2 ? (REAL)0.01 : 0;                             \
        const REAL l1 = variant == 1 || variant == 2 ? (REAL)0.002 : 0;                            \
        for (ptrdiff_t i = 0; i < size; i++) {                                                     \
            const long double sign = (W[i] > 0) - (W[i] < 0);                                      \
            want[i] = (long double)G[i] + l2 * (long double)W[i] + l1 * sign;                      \
            scale[i] = fabsl(G[i]) + 2 * fabsl(l2 * W[i]) + 2 * l1;                                \
        }                                                                                          \
        level->x##add_penalty(size, G, W, l2, l1);                                                 \
        check(x##close(G, want, scale, size), "penalty differs from the plain loop", level->name, #REAL, \
              size, variant);                                                                      \
        free(G), free(W), free(want);                                                              \
    }                                                                                              \
    static void x##check_column_sums(const fm_activation_level *level, ptrdiff_t rows, ptrdiff_t cols) \
    {                                                                                              \
        unsigned state = (unsigned)(rows * 101 + cols);                                            \
        REAL *D = x##array(rows * cols, &state, 0), *out = x##array(cols, &state, 0);              \
        REAL *want = malloc((size_t)(cols + 1) * sizeof *want);                                    \
        const REAL scale = (REAL)0.1;                                                              \
        for (ptrdiff_t j = 0; j < cols; j++) {                                                     \
            REAL sum = 0;                                                                          \
            for (ptrdiff_t i = 0; i < rows; i++) sum += D[i * cols + j];                           \
            want[j] = scale * sum;                                                                 \
        }                                                                                          \
        level->x##column_sums(rows, cols, D, out, scale);                                          \
        int ok = memcmp(out, want, (size_t)cols * sizeof *out) == 0;                               \
        for (int g = 0; g < GUARD; g++) ok &= out[cols + g] == (REAL)SENTINEL;                     \
        check(ok, "column sums differ from the plain loop", level->name, #REAL, rows * 1000 + cols, 0); \
        free(D), free(out), free(want);                                                            \
    }
FM_DEFINE_TESTS(s, float, 0x1p-23L)
FM_DEFINE_TESTS(d, double, 0x1p-52L)
#undef FM_DEFINE_TESTS

// The public functions call the level the activations chose (one table, one choice for both families),
// and fm_update_isa names it.
static void check_dispatch(void)
{
    const fm_activation_level *current = fm_activation_level_current();
    check(strcmp(fm_update_isa(), fm_activation_isa()) == 0 && strcmp(fm_update_isa(), current->name) == 0,
          "fm_update_isa names the activations' level", current->name, "-", 0, 0);
    float P[19], P_level[19], G[19];
    for (int j = 0; j < 19; j++) P[j] = P_level[j] = (float)(j - 9) / 3, G[j] = (float)(j % 5) / 7;
    const fm_step step = {FM_SGD, 0.3, 0, 0, 0, 0, 0, 0, 0};
    fm_supdate(19, P, G, NULL, NULL, &step);
    current->supdate(19, P_level, G, NULL, NULL, &step);
    check(memcmp(P, P_level, sizeof P) == 0, "fm_supdate calls the current level", current->name, "float", 19, 0);
}

int main(void)
{
    static const ptrdiff_t sizes[] = {0, 1, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65, 100, 257, 1000};
    static const ptrdiff_t rows[] = {0, 1, 3, 10, 100};
    enum { n_sizes = sizeof sizes / sizeof *sizes, n_rows = sizeof rows / sizeof *rows };
    int n_levels;
    const fm_activation_level *levels = fm_activation_levels(&n_levels);
    for (int l = 0; l < n_levels; l++) {
        if (!fm_cpu_runs(levels[l].name)) {
            printf("level %s: not supported by this CPU, skipped\n", levels[l].name);
            continue;
        }
        const int before = n_failed;
        for (int s = 0; s < n_sizes; s++) {
            for (int variant = 0; variant < 5; variant++)
                for (int with_l2 = 0; with_l2 < (variant == 4 ? 1 : 2); with_l2++)   // variant 4 has no G
                    scheck_update(&levels[l], sizes[s], variant, with_l2 ? 0.01 : 0),
                    dcheck_update(&levels[l], sizes[s], variant, with_l2 ? 0.01 : 0);
            for (int variant = 0; variant < 4; variant++)
                scheck_penalty(&levels[l], sizes[s], variant), dcheck_penalty(&levels[l], sizes[s], variant);
        }
        for (int variant = 1; variant < 4; variant++)
            scheck_flush(&levels[l], FLT_MIN, variant), dcheck_flush(&levels[l], DBL_MIN, variant);
        for (int r = 0; r < n_rows; r++)
            for (int s = 1; s < n_sizes; s++)
                scheck_column_sums(&levels[l], rows[r], sizes[s]), dcheck_column_sums(&levels[l], rows[r], sizes[s]);
        printf("level %s: %s\n", levels[l].name, n_failed == before ? "ok" : "FAILED");
    }
    check_dispatch();
    printf("fm_update_isa() = %s\n", fm_update_isa());
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed != 0;
}
