// fm_vector_impl.h: the vector type and the padded loads and stores of the elementwise kernels, shared by
// the templates fm_activations_impl.h and fm_update_impl.h (which fm_activations_impl.h includes): the
// former includes it after defining FM_REAL, FM_INT (the integer of the same width), FM_DOUBLE, FM_VBYTES,
// FM_VL, FM_INLINE and the names vec, vec_u, ivec, splat, load, store and first_lanes (private to one
// type: vec_s, vec_d, ...).

typedef FM_REAL vec __attribute__((vector_size(FM_VBYTES)));
typedef FM_REAL vec_u __attribute__((vector_size(FM_VBYTES), aligned(sizeof(FM_REAL))));  // any alignment
typedef FM_INT ivec __attribute__((vector_size(FM_VBYTES)));   // the same lanes as integers: masks, bits

// Every lane x. (x − 0 rather than x + 0, which would turn −0 into +0.)
FM_INLINE vec splat(FM_REAL x) { return x - (vec){0}; }

// A partial vector (the tail of a row narrower than a vector, such as a 10-class output row) moves
// with the instruction set's masked loads and stores, which touch only the lanes asked for (and
// cannot fault past them); 16-byte vectors have none, and go lane by lane. Lane by lane costs a
// store and a reload per lane, and made a 100 x 10 sigmoid take 3.7 times as long as a 100 x 16 one.
// (The AVX2 and AVX-512 files include <immintrin.h> first, before this template's names exist.)
#if FM_VBYTES == 32
// Lanes 0 .. n-1 of a mask as vmaskmov wants it: all ones there, zeros elsewhere.
FM_INLINE ivec first_lanes(ptrdiff_t n)
{
    ivec lane;
    for (int j = 0; j < FM_VL; j++) lane[j] = j;
    return lane < (FM_INT)n - (ivec){0};
}
#endif

// The n ≤ VL values at p, with the lanes past n set to fill.
FM_INLINE vec load(const FM_REAL *p, ptrdiff_t n, FM_REAL fill)
{
    if (n == FM_VL) return *(const vec_u *)p;
#if FM_VBYTES == 64 && FM_DOUBLE
    return (vec)_mm512_mask_loadu_pd((__m512d)splat(fill), (__mmask8)((1u << n) - 1), p);
#elif FM_VBYTES == 64
    return (vec)_mm512_mask_loadu_ps((__m512)splat(fill), (__mmask16)((1u << n) - 1), p);
#elif FM_VBYTES == 32
    const ivec mask = first_lanes(n);
#if FM_DOUBLE
    const vec v = (vec)_mm256_maskload_pd(p, (__m256i)mask);
#else
    const vec v = (vec)_mm256_maskload_ps(p, (__m256i)mask);
#endif
    return (vec)((mask & (ivec)v) | (~mask & (ivec)splat(fill)));
#else
    vec v = splat(fill);
    for (ptrdiff_t j = 0; j < n; j++) v[j] = p[j];
    return v;
#endif
}

// The first n ≤ VL lanes of v, stored at p.
FM_INLINE void store(FM_REAL *p, ptrdiff_t n, vec v)
{
    if (n == FM_VL) {
        *(vec_u *)p = v;
        return;
    }
#if FM_VBYTES == 64 && FM_DOUBLE
    _mm512_mask_storeu_pd(p, (__mmask8)((1u << n) - 1), (__m512d)v);
#elif FM_VBYTES == 64
    _mm512_mask_storeu_ps(p, (__mmask16)((1u << n) - 1), (__m512)v);
#elif FM_VBYTES == 32 && FM_DOUBLE
    _mm256_maskstore_pd(p, (__m256i)first_lanes(n), (__m256d)v);
#elif FM_VBYTES == 32
    _mm256_maskstore_ps(p, (__m256i)first_lanes(n), (__m256)v);
#else
    for (ptrdiff_t j = 0; j < n; j++) p[j] = v[j];
#endif
}
