// fm_pack_impl.h: template of the packing routine fm_?pack (contract in fm_gemm.h).
// Include after defining FM_REAL (float or double) and FM_PACK (the function's name); both are
// #undef'd at the end so the file can be included again for the other type.
//
// Packing copies a block of A or B into the order the micro-kernel reads it: one micro-panel of w rows
// becomes k groups of w contiguous values. It reads through the general strides (rs, cs), so a
// transposed operand costs no more than a plain one, and pads the last micro-panel with zeros so the
// micro-kernel never needs a special case for an edge.

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif

// One micro-panel: rows (<= w) rows of X, k columns, into dst (w*k values). Always inlined so that each
// common width w below gets a copy where w is a constant and the copies become vector moves.
static inline __attribute__((always_inline)) void
FM_CAT(FM_PACK, _panel)(ptrdiff_t rows, ptrdiff_t k, const FM_REAL *restrict X, ptrdiff_t rs,
                        ptrdiff_t cs, int w, FM_REAL *restrict dst)
{
    if (rows == w && rs == 1) {
        // Each column of the micro-panel is contiguous in X (A transposed, or B as it is).
        for (ptrdiff_t p = 0; p < k; p++)
            for (int i = 0; i < w; i++) dst[p * w + i] = X[p * cs + i];
    } else if (rows == w) {
        // A transpose: walk along the rows of X, which are contiguous when cs == 1.
        for (ptrdiff_t p = 0; p < k; p++)
            for (int i = 0; i < w; i++) dst[p * w + i] = X[i * rs + p * cs];
    } else {
        for (ptrdiff_t p = 0; p < k; p++) {
            for (ptrdiff_t i = 0; i < rows; i++) dst[p * w + i] = X[i * rs + p * cs];
            for (ptrdiff_t i = rows; i < w; i++) dst[p * w + i] = 0;
        }
    }
}

void FM_PACK(ptrdiff_t m, ptrdiff_t k, const FM_REAL *X, ptrdiff_t rs, ptrdiff_t cs, int w, FM_REAL *dst)
{
    // Loop over the micro-panels of w rows.
    for (ptrdiff_t i0 = 0; i0 < m; i0 += w, X += w * rs, dst += w * k) {
        const ptrdiff_t rows = m - i0 < w ? m - i0 : w;
        switch (w) {
        case 4: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, 4, dst); break;
        case 6: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, 6, dst); break;
        case 8: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, 8, dst); break;
        case 16: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, 16, dst); break;
        case 32: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, 32, dst); break;
        default: FM_CAT(FM_PACK, _panel)(rows, k, X, rs, cs, w, dst); break;
        }
    }
}

#undef FM_REAL
#undef FM_PACK
