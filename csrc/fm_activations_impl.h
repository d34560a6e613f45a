// fm_activations_impl.h: template of the activation kernels (contracts in fm_activations.h), and, through
// fm_update_impl.h included at its end, of the update kernels (contracts in fm_update.h).
//
// Include after defining
//   FM_LEVEL    the level's name as a bare word (baseline, avx2, avx512); it ends the functions' names
//   FM_VBYTES   bytes per SIMD vector: 16, 32 or 64
//   FM_DOUBLE   0 for the float kernels (fm_s...), 1 for the double ones (fm_d...)
// The file #undefs FM_DOUBLE at the end, so it can be included again for the other type. As for the
// GEMM micro-kernels, the instruction set comes from the including file (`#pragma GCC target(...)`):
// the GCC vector extensions below become SSE2, AVX2 or AVX-512 code.
//
// e^x, the Cephes way but in vectors:
//   x = n·ln2 + r   with n = round(x / ln2), |r| ≤ ln2/2   (Cody–Waite: ln2 split into a head with few
//                   bits, so that n·head is exact, and a tail)
//   e^x = 2ⁿ·(1 + q),   q = e^r − 1 = r + r²/2! + … + r^N/N!   (Taylor: by Horner's scheme for float,
//                       Estrin's for double)
// N = 7 for float, 13 for double: the first term left out, r^(N+1)/(N+1)!, is below 2^-26 (float) or
// 2^-56 (double) of q. Keeping q apart from the 1 gives e^x − 1 = (2ⁿ − 1) + 2ⁿ·q accurately near 0
// too, which tanh needs. Every e^x inside an activation has x ≤ 0 (sigmoid e^−|z|, tanh e^−2|z|, softmax
// e^(z − max z)), so nothing overflows; x below ln(smallest normal number) gives 0 rather than a
// subnormal. The exp activation itself takes any z: above half the largest exponent it is (e^(z/2))²,
// so that 2ⁿ stays a normal number.
//
// The tail of a row (fewer than a vector's worth of values) goes through the same vector code, padded,
// so an element's result does not depend on where it sits in the row.

#include <stdint.h>

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif
#define FM_INLINE static inline __attribute__((always_inline))

#if FM_DOUBLE
#define FM_REAL double
#define FM_INT int64_t
#define FM_X d
#define FM_MANTISSA_BITS 52
#define FM_EXPONENT_BIAS 1023
#define FM_TAYLOR_DEGREE 13
#define FM_LN2_HEAD 6.93145751953125e-1         // 15 significant bits: n·head is exact for |n| ≤ 1022
#define FM_LN2_TAIL 1.42860682030941723212e-6   // ln2 − head
#define FM_LOG_MIN (-708.39641853226408)        // ln(DBL_MIN) = −1022·ln2
#define FM_LOG_MAX 709.782712893384             // the largest double whose e^x is below DBL_MAX
#else
#define FM_REAL float
#define FM_INT int32_t
#define FM_X s
#define FM_MANTISSA_BITS 23
#define FM_EXPONENT_BIAS 127
#define FM_TAYLOR_DEGREE 7
#define FM_LN2_HEAD 0.693359375f                // 355/512: n·head is exact for |n| ≤ 126
#define FM_LN2_TAIL (-2.12194440e-4f)           // ln2 − head
#define FM_LOG_MIN (-87.3365447505531f)         // ln(FLT_MIN) = −126·ln2
#define FM_LOG_MAX 88.7228317f                  // the largest float whose e^x is below FLT_MAX
#endif
#define FM_VL ((int)(FM_VBYTES / sizeof(FM_REAL)))   // values per vector

// Names private to one type (vec_s, vec_d, ...) and the public names (fm_sbias_activation_avx2, ...).
#define FM_T(name) FM_CAT(name, FM_CAT(_, FM_X))
#define FM_PUBLIC(stem) FM_CAT(FM_CAT(fm_, FM_X), FM_CAT(stem, FM_CAT(_, FM_LEVEL)))
#define vec FM_T(vec)
#define vec_u FM_T(vec_u)
#define ivec FM_T(ivec)
#define wide FM_T(wide)
#define splat FM_T(splat)
#define load FM_T(load)
#define store FM_T(store)
#define first_lanes FM_T(first_lanes)
#define select FM_T(select)
#define abs_v FM_T(abs_v)
#define copysign_v FM_T(copysign_v)
#define exp_parts FM_T(exp_parts)
#define exp_nonpositive FM_T(exp_nonpositive)
#define expm1_nonpositive FM_T(expm1_nonpositive)
#define exp_v FM_T(exp_v)
#define identity_v FM_T(identity_v)
#define sigmoid_v FM_T(sigmoid_v)
#define tanh_v FM_T(tanh_v)
#define relu_v FM_T(relu_v)
#define map_row FM_T(map_row)
#define map_narrow_rows FM_T(map_narrow_rows)
#define softmax_row FM_T(softmax_row)
#define softmax_narrow_rows FM_T(softmax_narrow_rows)
#define sigmoid_grad FM_T(sigmoid_grad)
#define tanh_grad FM_T(tanh_grad)
#define relu_grad FM_T(relu_grad)
#define exp_grad FM_T(exp_grad)
#define map_grad FM_T(map_grad)

#include "fm_vector_impl.h"
typedef double wide __attribute__((vector_size(FM_VL * sizeof(double))));   // the lanes widened to double

// Lane by lane, mask ? a : b   (mask lanes are all ones or all zeros, as comparisons give them).
FM_INLINE vec select(ivec mask, vec a, vec b) { return (vec)((mask & (ivec)a) | (~mask & (ivec)b)); }

FM_INLINE vec abs_v(vec x) { return (vec)((ivec)x & ~(ivec)splat(-0.0)); }

// |magnitude| with the sign of sign (magnitude must have its sign bit clear).
FM_INLINE vec copysign_v(vec magnitude, vec sign) { return (vec)((ivec)magnitude | ((ivec)sign & (ivec)splat(-0.0))); }

// x = n·ln2 + r: returns 2ⁿ and sets *q = e^r − 1. Needs FM_LOG_MIN ≤ x ≤ 0, or NaN (which gives NaN in *q).
FM_INLINE vec exp_parts(vec x, vec *q)
{
    static const double inverse_factorial[] = {
        1.0, 1.0, 1.0 / 2, 1.0 / 6, 1.0 / 24, 1.0 / 120, 1.0 / 720, 1.0 / 5040, 1.0 / 40320,
        1.0 / 362880, 1.0 / 3628800, 1.0 / 39916800, 1.0 / 479001600, 1.0 / 6227020800.0};
    // Adding 1.5·2^mantissa_bits rounds x/ln2 (|x/ln2| ≤ 1022) to the nearest integer n, and leaves n in
    // the low bits of the sum, as a two's-complement integer once the constant's own bits are taken off.
    const vec round_shift = splat((FM_REAL)1.5 * ((FM_INT)1 << FM_MANTISSA_BITS));
    const vec shifted = x * (FM_REAL)1.44269504088896340736 + round_shift;   // x · log₂e
    const vec n = shifted - round_shift;
    const vec r = (x - n * FM_LN2_HEAD) - n * FM_LN2_TAIL;

    // q = r·(c₀ + c₁r + … + c_{N−1}r^{N−1}) with c_i = 1/(i+1)!
    vec c[FM_TAYLOR_DEGREE];
#pragma GCC unroll 16
    for (int i = 0; i < FM_TAYLOR_DEGREE; i++) c[i] = splat((FM_REAL)inverse_factorial[i + 1]);
#if FM_DOUBLE
    // Estrin's scheme: neighbours paired with r (c₀ + c₁r, c₂ + c₃r, …), those pairs paired with r²,
    // then r⁴, r⁸: four multiply-adds deep instead of Horner's thirteen, so that the vectors of a row
    // overlap (`make -C csrc bench`, float64 sigmoid).
    vec power = r;
#pragma GCC unroll 4
    for (int width = 1; width < FM_TAYLOR_DEGREE; width *= 2, power *= power)
#pragma GCC unroll 8
        for (int i = 0; i + width < FM_TAYLOR_DEGREE; i += 2 * width) c[i] += c[i + width] * power;
#else
    // Horner's scheme: seven deep is short enough.
#pragma GCC unroll 8
    for (int i = FM_TAYLOR_DEGREE - 2; i >= 0; i--) c[i] += c[i + 1] * r;
#endif
    *q = c[0] * r;

    const ivec biased_exponent = ((ivec)shifted - (ivec)round_shift) + FM_EXPONENT_BIAS;
    return (vec)(biased_exponent << FM_MANTISSA_BITS);
}

// e^x for x ≤ 0 (or NaN): 0 where it would be subnormal.
FM_INLINE vec exp_nonpositive(vec x)
{
    const ivec underflow = x < FM_LOG_MIN;
    vec q, scale = exp_parts(select(underflow, splat(FM_LOG_MIN), x), &q);
    return select(underflow, splat(0), scale + scale * q);
}

// e^x − 1 for x ≤ 0 (or NaN), with a small relative error even for tiny |x|.
FM_INLINE vec expm1_nonpositive(vec x)
{
    const ivec underflow = x < FM_LOG_MIN;
    vec q, scale = exp_parts(select(underflow, splat(FM_LOG_MIN), x), &q);
    return select(underflow, splat(-1), (scale - 1) + scale * q);
}

// e^z for any z: +∞ above ln(largest finite number), 0 where it would be subnormal, NaN for NaN.
// Above half of that, 2ⁿ alone would overflow, so e^z is (e^(z/2))² there (z/2 is exact).
FM_INLINE vec exp_v(vec z)
{
    const ivec underflow = z < FM_LOG_MIN, overflow = z > FM_LOG_MAX, halve = z > FM_LOG_MAX / 2;
    const vec x = select(underflow | overflow, splat(0), select(halve, z * (FM_REAL)0.5, z));
    vec q, scale = exp_parts(x, &q);
    vec e = scale + scale * q;
    e = select(halve, e * e, e);
    return select(overflow, splat(__builtin_inf()), select(underflow, splat(0), e));
}

FM_INLINE vec identity_v(vec z) { return z; }

// σ(z) = 1/(1 + e⁻ᶻ) for z ≥ 0 and e^z/(1 + e^z) for z < 0: both with e = e^−|z| ≤ 1, so no overflow.
FM_INLINE vec sigmoid_v(vec z)
{
    const vec e = exp_nonpositive(-abs_v(z));
    return select(z >= 0, splat(1), e) / (1 + e);
}

// tanh z = sign(z)·(1 − e)/(1 + e) with e = e^−2|z|, written with m = e − 1 as −m/(2 + m) so that it
// stays accurate near 0, where 1 − e would cancel. |z| is capped at 44, where tanh is 1 even in double,
// so that −2|z| cannot overflow.
FM_INLINE vec tanh_v(vec z)
{
    vec magnitude = abs_v(z);
    magnitude = select(magnitude > 44, splat(44), magnitude);
    const vec m = expm1_nonpositive(-2 * magnitude);
    return copysign_v(-m / (2 + m), z);
}

// max(z, 0), but NaN stays NaN.
FM_INLINE vec relu_v(vec z) { return select(z < 0, splat(0), z); }

// z := σ(z + b) for one row of n values; b may be NULL. A row longer than a vector whose length is not
// a multiple of one ends with its last VL values as a whole vector, overlapping the one before (those
// lanes get the same values twice), loaded before anything is stored: a partial vector's masked store
// would hold up the next row's loads until it reached the cache (`make -C csrc bench`, AVX-512: per value,
// a 100 x 10 double sigmoid costs 1.6 times a 100 x 16 one this way, 4.6 times with a masked store).
FM_INLINE void map_row(FM_REAL *z, const FM_REAL *b, ptrdiff_t n, vec (*sigma)(vec))
{
    const int overlap_tail = n > FM_VL && n % FM_VL != 0;
    vec tail = splat(0);
    if (overlap_tail) {
        tail = load(z + n - FM_VL, FM_VL, 0);
        if (b != NULL) tail += load(b + n - FM_VL, FM_VL, 0);
    }
    const ptrdiff_t end = overlap_tail ? n - n % FM_VL : n;
    for (ptrdiff_t j = 0; j < end; j += FM_VL) {
        const ptrdiff_t width = end - j < FM_VL ? end - j : FM_VL;
        vec v = load(z + j, width, 0);
        if (b != NULL) v += load(b + j, width, 0);
        store(z + j, width, sigma(v));
    }
    if (overlap_tail) store(z + n - FM_VL, FM_VL, sigma(tail));
}

// Z := σ(Z + b) for rows narrower than a vector (0 < cols < VL), with an elementwise σ: the rows run
// together as one array, the bias repeated along it (its lanes' pattern repeats every lcm(cols, VL)
// values), so that every vector but the last is whole, rather than each row a partial vector. The
// sums and σ are those of map_row, value for value.
FM_INLINE void map_narrow_rows(FM_REAL *Z, const FM_REAL *b, ptrdiff_t rows, ptrdiff_t cols, vec (*sigma)(vec))
{
    const ptrdiff_t size = rows * cols;
    if (b == NULL) {
        map_row(Z, NULL, size, sigma);
        return;
    }
    ptrdiff_t period = FM_VL;
    while (period % cols != 0) period += FM_VL;   // lcm(cols, VL) ≤ cols · VL
    FM_REAL repeated[FM_VL * FM_VL];
    for (ptrdiff_t t = 0; t < period; t++) repeated[t] = b[t % cols];
    for (ptrdiff_t i = 0, t = 0; i < size; i += FM_VL, t = t + FM_VL == period ? 0 : t + FM_VL) {
        const ptrdiff_t width = size - i < FM_VL ? size - i : FM_VL;
        store(Z + i, width, sigma(load(Z + i, width, 0) + load(repeated + t, width, 0)));
    }
}

// z := e^(z − max z) / Σ e^(z − max z) for one row of n values. The sum is kept in double, so a float
// row of any length loses nothing to it.
static void softmax_row(FM_REAL *z, ptrdiff_t n)
{
    // Padding lanes hold −∞: they never win the max, and their e^(−∞) = 0 adds nothing to the sum.
    vec largest_v = splat(-__builtin_inf());
    for (ptrdiff_t j = 0; j < n; j += FM_VL) {
        const vec v = load(z + j, n - j < FM_VL ? n - j : FM_VL, -__builtin_inf());
        largest_v = select(v > largest_v, v, largest_v);
    }
    FM_REAL largest = largest_v[0];
    for (int lane = 1; lane < FM_VL; lane++)
        if (largest_v[lane] > largest) largest = largest_v[lane];

    wide total_v = {0};
    for (ptrdiff_t j = 0; j < n; j += FM_VL) {
        const ptrdiff_t width = n - j < FM_VL ? n - j : FM_VL;
        const vec e = exp_nonpositive(load(z + j, width, -__builtin_inf()) - largest);
        store(z + j, width, e);
        total_v += __builtin_convertvector(e, wide);
    }
    double total = 0;
    for (int lane = 0; lane < FM_VL; lane++) total += total_v[lane];

    const FM_REAL inverse_total = (FM_REAL)(1 / total);
    for (ptrdiff_t j = 0; j < n; j += FM_VL) {
        const ptrdiff_t width = n - j < FM_VL ? n - j : FM_VL;
        store(z + j, width, load(z + j, width, 0) * inverse_total);
    }
}

// softmax_row for each of rows rows narrower than a vector (0 < cols < VL), value for value: each
// row's maximum, sum and scaling go value by value, in the order softmax_row's lanes take them, and
// the exponentials of VL rows at a time run as one array, in whole vectors, rather than a partial
// vector and two reductions across its lanes a row.
static void softmax_narrow_rows(FM_REAL *Z, ptrdiff_t rows, ptrdiff_t cols)
{
    FM_REAL shifted[FM_VL * FM_VL];   // z − max z of VL rows
    for (ptrdiff_t first = 0; first < rows; first += FM_VL) {
        const ptrdiff_t n_rows = rows - first < FM_VL ? rows - first : FM_VL, size = n_rows * cols;
        FM_REAL *z = Z + first * cols;
        for (ptrdiff_t i = 0; i < size; i += cols) {
            FM_REAL largest = -__builtin_inf();   // NaN never wins, as in softmax_row
            for (ptrdiff_t j = i; j < i + cols; j++)
                if (z[j] > largest) largest = z[j];
            for (ptrdiff_t j = i; j < i + cols; j++) shifted[j] = z[j] - largest;
        }
        for (ptrdiff_t i = 0; i < size; i += FM_VL) {
            const ptrdiff_t width = size - i < FM_VL ? size - i : FM_VL;
            store(z + i, width, exp_nonpositive(load(shifted + i, width, -__builtin_inf())));
        }
        for (ptrdiff_t i = 0; i < size; i += cols) {
            double total = 0;
            for (ptrdiff_t j = i; j < i + cols; j++) total += z[j];
            const FM_REAL inverse_total = (FM_REAL)(1 / total);
            for (ptrdiff_t j = i; j < i + cols; j++) z[j] *= inverse_total;
        }
    }
}

void FM_PUBLIC(bias_activation)(ptrdiff_t rows, ptrdiff_t cols, FM_REAL *Z, const FM_REAL *b, int activation)
{
    if (cols > 0 && cols < FM_VL && rows > 1) {
        switch (activation) {
        case FM_SIGMOID: map_narrow_rows(Z, b, rows, cols, sigmoid_v); break;
        case FM_TANH: map_narrow_rows(Z, b, rows, cols, tanh_v); break;
        case FM_RELU: map_narrow_rows(Z, b, rows, cols, relu_v); break;
        case FM_EXP: map_narrow_rows(Z, b, rows, cols, exp_v); break;
        case FM_SOFTMAX:
            if (b != NULL) map_narrow_rows(Z, b, rows, cols, identity_v);
            softmax_narrow_rows(Z, rows, cols);
            break;
        default:
            if (b != NULL) map_narrow_rows(Z, b, rows, cols, identity_v);
        }
        return;
    }
    for (ptrdiff_t i = 0; i < rows; i++) {
        FM_REAL *z = Z + i * cols;
        switch (activation) {
        case FM_SIGMOID: map_row(z, b, cols, sigmoid_v); break;
        case FM_TANH: map_row(z, b, cols, tanh_v); break;
        case FM_RELU: map_row(z, b, cols, relu_v); break;
        case FM_EXP: map_row(z, b, cols, exp_v); break;
        case FM_SOFTMAX:
            if (b != NULL) map_row(z, b, cols, identity_v);
            softmax_row(z, cols);
            break;
        default:
            if (b != NULL) map_row(z, b, cols, identity_v);
        }
    }
}

// δ·σ'(z) from a = σ(z) and the incoming δ.
FM_INLINE vec sigmoid_grad(vec a, vec delta) { return delta * (a * (1 - a)); }
FM_INLINE vec tanh_grad(vec a, vec delta) { return delta * ((1 - a) * (1 + a)); }   // 1 − a², without cancelling near |a| = 1
FM_INLINE vec relu_grad(vec a, vec delta) { return select(a > 0, delta, splat(0)); }
FM_INLINE vec exp_grad(vec a, vec delta) { return delta * a; }

// D := grad(A, D) over size values.
FM_INLINE void map_grad(ptrdiff_t size, const FM_REAL *A, FM_REAL *D, vec (*grad)(vec, vec))
{
    for (ptrdiff_t i = 0; i < size; i += FM_VL) {
        const ptrdiff_t width = size - i < FM_VL ? size - i : FM_VL;
        store(D + i, width, grad(load(A + i, width, 0), load(D + i, width, 0)));
    }
}

void FM_PUBLIC(activation_derivative)(ptrdiff_t size, const FM_REAL *A, FM_REAL *D, int activation)
{
    switch (activation) {
    case FM_SIGMOID: map_grad(size, A, D, sigmoid_grad); break;
    case FM_TANH: map_grad(size, A, D, tanh_grad); break;
    case FM_RELU: map_grad(size, A, D, relu_grad); break;
    case FM_EXP: map_grad(size, A, D, exp_grad); break;
    default: break;   // identity and softmax: σ' = 1
    }
}

// The update kernels of this level and type (fm_update.h), in the same vectors.
#include "fm_update_impl.h"

#undef vec
#undef vec_u
#undef ivec
#undef wide
#undef splat
#undef load
#undef store
#undef first_lanes
#undef select
#undef abs_v
#undef copysign_v
#undef exp_parts
#undef exp_nonpositive
#undef expm1_nonpositive
#undef exp_v
#undef identity_v
#undef sigmoid_v
#undef tanh_v
#undef relu_v
#undef map_row
#undef map_narrow_rows
#undef softmax_row
#undef softmax_narrow_rows
#undef sigmoid_grad
#undef tanh_grad
#undef relu_grad
#undef exp_grad
#undef map_grad
#undef FM_T
#undef FM_PUBLIC
#undef FM_VL
#undef FM_REAL
#undef FM_INT
#undef FM_X
#undef FM_MANTISSA_BITS
#undef FM_EXPONENT_BIAS
#undef FM_TAYLOR_DEGREE
#undef FM_LN2_HEAD
#undef FM_LN2_TAIL
#undef FM_LOG_MIN
#undef FM_LOG_MAX
#undef FM_INLINE
#undef FM_DOUBLE
