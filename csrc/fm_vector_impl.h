// fm_vector_impl.h: the vector type and the padded loads and stores of the elementwise kernels, shared by
// the templates fm_activations_impl.h and fm_update_impl.h (which fm_activations_impl.h includes): the
// former includes it after defining FM_REAL, FM_INT (the integer of the same width), FM_VBYTES, FM_VL,
// FM_INLINE and the names vec, vec_u, ivec, splat, load and store (private to one type: vec_s, vec_d, ...).

typedef FM_REAL vec __attribute__((vector_size(FM_VBYTES)));
typedef FM_REAL vec_u __attribute__((vector_size(FM_VBYTES), aligned(sizeof(FM_REAL))));  // any alignment
typedef FM_INT ivec __attribute__((vector_size(FM_VBYTES)));   // the same lanes as integers: masks, bits

// Every lane x. (x − 0 rather than x + 0, which would turn −0 into +0.)
FM_INLINE vec splat(FM_REAL x) { return x - (vec){0}; }

// The n ≤ VL values at p, with the lanes past n set to fill.
FM_INLINE vec load(const FM_REAL *p, ptrdiff_t n, FM_REAL fill)
{
    if (n == FM_VL) return *(const vec_u *)p;
    vec v = splat(fill);
    for (ptrdiff_t j = 0; j < n; j++) v[j] = p[j];
    return v;
}

// The first n ≤ VL lanes of v, stored at p.
FM_INLINE void store(FM_REAL *p, ptrdiff_t n, vec v)
{
    if (n == FM_VL) {
        *(vec_u *)p = v;
        return;
    }
    for (ptrdiff_t j = 0; j < n; j++) p[j] = v[j];
}
