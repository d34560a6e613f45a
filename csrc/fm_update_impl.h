// fm_update_impl.h: template of the update kernels (contracts in fm_update.h).
//
// Included only by fm_activations_impl.h, at its end, once per level and type: it uses that template's
// FM_LEVEL, FM_DOUBLE, FM_REAL, FM_X, FM_VL, FM_INLINE, FM_T, FM_PUBLIC and vectors (vec, vec_u, ivec,
// splat, load, store: fm_vector_impl.h), which are still defined there, so that one set of per-level
// files (fm_activations.c, fm_activations_avx2.c, fm_activations_avx512.c) and one table of levels
// compile and dispatch every elementwise kernel. As for the activations, the instruction set comes from
// the including file (`#pragma GCC target(...)`): the GCC vector extensions below become SSE2, AVX2 or
// AVX-512 code. Each loop takes one vector of every array a step; the tail goes through the same vector
// code, padded.

#if FM_DOUBLE
#define FM_SQRT __builtin_sqrt
#define FM_SMALLEST_NORMAL 2.2250738585072014e-308   // DBL_MIN
#else
#define FM_SQRT __builtin_sqrtf
#define FM_SMALLEST_NORMAL 1.17549435e-38f            // FLT_MIN
#endif
#define sqrt_v FM_T(sqrt_v)
#define flush_subnormal FM_T(flush_subnormal)

// √v (v ≥ 0): one vector square root on x86-64 (the including file has <immintrin.h>), else a
// square-root instruction per lane. (The compiler keeps a lane loop scalar: C's sqrt may set errno.)
FM_INLINE vec sqrt_v(vec v)
{
#if defined(__x86_64__) && FM_VBYTES == 64 && FM_DOUBLE
    return (vec)_mm512_sqrt_pd((__m512d)v);
#elif defined(__x86_64__) && FM_VBYTES == 64
    return (vec)_mm512_sqrt_ps((__m512)v);
#elif defined(__x86_64__) && FM_VBYTES == 32 && FM_DOUBLE
    return (vec)_mm256_sqrt_pd((__m256d)v);
#elif defined(__x86_64__) && FM_VBYTES == 32
    return (vec)_mm256_sqrt_ps((__m256)v);
#elif defined(__x86_64__) && FM_DOUBLE
    return (vec)_mm_sqrt_pd((__m128d)v);
#elif defined(__x86_64__)
    return (vec)_mm_sqrt_ps((__m128)v);
#else
#pragma GCC unroll 16
    for (int l = 0; l < FM_VL; l++) v[l] = FM_SQRT(v[l]);
    return v;
#endif
}

// v with every lane smaller in magnitude than the smallest normal number set to 0 (NaN kept). The
// optimizer's state goes through it: a velocity or moment whose gradient stays 0 (a dead ReLU unit, an
// input that is always 0) decays by μ or β a step into the subnormal numbers and stays there (μ times
// the smallest subnormal rounds back to it), and x86 CPUs take up to a hundred times longer for every
// operation on a subnormal number: a long fit with momentum slowed down by half.
FM_INLINE vec flush_subnormal(vec v)
{
    const ivec small = (v < FM_SMALLEST_NORMAL) & (v > -FM_SMALLEST_NORMAL);
    return (vec)((ivec)v & ~small);
}

// Run the statements ... for every vector of size values: i is the first index and n (the number of
// values) is the constant VL for whole vectors, so that their loads and stores are plain vector moves;
// the tail, if any, runs the same statements once more with n < VL.
#define FM_FOR_VECTORS(size, ...)                                                                     \
    do {                                                                                              \
        ptrdiff_t i = 0;                                                                              \
        for (; i + FM_VL <= (size); i += FM_VL) {                                                     \
            const ptrdiff_t n = FM_VL;                                                                \
            __VA_ARGS__                                                                               \
        }                                                                                             \
        if (i < (size)) {                                                                             \
            const ptrdiff_t n = (size) - i;                                                           \
            __VA_ARGS__                                                                               \
        }                                                                                             \
    } while (0)

#define update_steps FM_T(update_steps)

// The update, with the gradient G (decay == 0) or G + l2 · P (decay == 1): inlined once for each, so
// that the plain gradient costs nothing extra.
FM_INLINE void update_steps(ptrdiff_t size, FM_REAL *restrict P, const FM_REAL *restrict G, FM_REAL *restrict S1,
                            FM_REAL *restrict S2, const fm_step *step, const int decay)
{
    const FM_REAL eta = (FM_REAL)step->learning_rate, mu = (FM_REAL)step->momentum, l2 = (FM_REAL)step->l2;
#define FM_GRADIENT (decay ? load(G + i, n, 0) + l2 * load(P + i, n, 0) : load(G + i, n, 0))
    if (step->optimizer == FM_ADAM) {
        const FM_REAL b1 = (FM_REAL)step->beta1, b2 = (FM_REAL)step->beta2, eps = (FM_REAL)step->epsilon;
        const FM_REAL c1 = (FM_REAL)step->correction1, c2 = (FM_REAL)step->correction2;
        FM_FOR_VECTORS(size, {
            const vec g = FM_GRADIENT;
            const vec m = flush_subnormal(b1 * load(S1 + i, n, 0) + (1 - b1) * g);
            const vec v = flush_subnormal(b2 * load(S2 + i, n, 0) + (1 - b2) * g * g);
            store(S1 + i, n, m);
            store(S2 + i, n, v);
            store(P + i, n, load(P + i, n, 0) - eta * (m / c1) / (sqrt_v(v / c2) + eps));
        });
    } else if (S1 == NULL) {
        FM_FOR_VECTORS(size, store(P + i, n, load(P + i, n, 0) - eta * FM_GRADIENT););
    } else if (G == NULL && step->optimizer == FM_SGD) {   // S1 holds μ S1 − η G already (fused in the GEMM)
        FM_FOR_VECTORS(size, {
            const vec velocity = flush_subnormal(load(S1 + i, n, 0));
            store(S1 + i, n, velocity);
            store(P + i, n, load(P + i, n, 0) + velocity);
        });
    } else if (step->optimizer == FM_NESTEROV) {
        FM_FOR_VECTORS(size, {
            const vec step_g = eta * FM_GRADIENT;
            const vec velocity = flush_subnormal(mu * load(S1 + i, n, 0) - step_g);
            store(S1 + i, n, velocity);
            store(P + i, n, load(P + i, n, 0) + (mu * velocity - step_g));
        });
    } else {
        FM_FOR_VECTORS(size, {
            const vec velocity = flush_subnormal(mu * load(S1 + i, n, 0) - eta * FM_GRADIENT);
            store(S1 + i, n, velocity);
            store(P + i, n, load(P + i, n, 0) + velocity);
        });
    }
#undef FM_GRADIENT
}

void FM_PUBLIC(update)(ptrdiff_t size, FM_REAL *restrict P, const FM_REAL *restrict G, FM_REAL *restrict S1,
                       FM_REAL *restrict S2, const fm_step *step)
{
    if (step->l2 != 0 && G != NULL)
        update_steps(size, P, G, S1, S2, step, 1);
    else
        update_steps(size, P, G, S1, S2, step, 0);
}

void FM_PUBLIC(add_penalty)(ptrdiff_t size, FM_REAL *restrict G, const FM_REAL *restrict W, FM_REAL l2,
                            FM_REAL l1)
{
    if (l2 != 0) FM_FOR_VECTORS(size, store(G + i, n, load(G + i, n, 0) + l2 * load(W + i, n, 0)););
    if (l1 != 0)
        FM_FOR_VECTORS(size, {
            const vec w = load(W + i, n, 0);
            // sign(w) = (w > 0) − (w < 0): comparisons give −1 (all ones) for true
            const vec sign = __builtin_convertvector((w < 0) - (w > 0), vec);
            store(G + i, n, load(G + i, n, 0) + l1 * sign);
        });
}

void FM_PUBLIC(column_sums)(ptrdiff_t rows, ptrdiff_t cols, const FM_REAL *restrict D, FM_REAL *restrict out,
                            FM_REAL scale)
{
    // Four vectors of columns at a time, so that each row adds into four independent sums.
    ptrdiff_t j = 0;
    for (; j + 4 * FM_VL <= cols; j += 4 * FM_VL) {
        vec sum[4] = {{0}};
        for (ptrdiff_t i = 0; i < rows; i++)
#pragma GCC unroll 4
            for (int v = 0; v < 4; v++) sum[v] += *(const vec_u *)(D + i * cols + j + v * FM_VL);
#pragma GCC unroll 4
        for (int v = 0; v < 4; v++) *(vec_u *)(out + j + v * FM_VL) = scale * sum[v];
    }
    for (; j < cols; j += FM_VL) {
        const ptrdiff_t n = cols - j < FM_VL ? cols - j : FM_VL;
        vec sum = {0};
        for (ptrdiff_t i = 0; i < rows; i++) sum += load(D + i * cols + j, n, 0);
        store(out + j, n, scale * sum);
    }
}

#undef FM_FOR_VECTORS
#undef update_steps
#undef sqrt_v
#undef flush_subnormal
#undef FM_SQRT
#undef FM_SMALLEST_NORMAL
