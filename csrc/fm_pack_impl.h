// fm_pack_impl.h: template of the packing routine fm_?pack (contract in fm_gemm.h).
// Include after defining FM_REAL (float or double), FM_PACK (the function's name) and
// FM_TRANSPOSE(x, ldx, y, ldy), which sets y[p*ldy + i] = x[i*ldx + p] for an FM_TB x FM_TB block;
// they are #undef'd at the end so the file can be included again for the other type.
//
// Packing copies a block of A or B into the order the micro-kernel reads it: one micro-panel of w rows
// becomes k groups of w contiguous values. It reads through the general strides (rs, cs), so a
// transposed operand costs no more than a plain one, and pads the last micro-panel with zeros so the
// micro-kernel never needs a special case for an edge.

// Columns copied per step: FM_PACK_KB (fm_tuning.h), a cache line of floats, so that every line of X
// that is read is used up at once, whichever of rs and cs is 1. (Rows of a weight matrix are often 4 KiB
// apart; walking down one column of X at a time would touch a new page and an already crowded L1 set at
// every step.)

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif

// Columns 0 .. kb-1 of one micro-panel: rows (<= w) rows of X into dst (row stride w). Always inlined,
// so that each common width w below gets a copy where w is a constant and the copies become vector moves.
static inline __attribute__((always_inline)) void
FM_CAT(FM_PACK, _panel)(ptrdiff_t rows, ptrdiff_t kb, const FM_REAL *restrict X, ptrdiff_t rs,
                        ptrdiff_t cs, int w, FM_REAL *restrict dst)
{
    if (rows == w && rs == 1) {        // each column of the micro-panel is contiguous in X
        for (ptrdiff_t p = 0; p < kb; p++)
            for (int i = 0; i < w; i++) dst[p * w + i] = X[p * cs + i];
    } else if (rows == w && cs == 1) { // a transpose, by FM_TB x FM_TB blocks in registers
        int i0 = 0;
        ptrdiff_t p0 = 0;
        for (; i0 + FM_TB <= w; i0 += FM_TB)
            for (p0 = 0; p0 + FM_TB <= kb; p0 += FM_TB)
                FM_TRANSPOSE(X + i0 * rs + p0, rs, dst + p0 * w + i0, w);
        for (int i = 0; i < w; i++)    // what the blocks left: the last rows, the last columns
            for (ptrdiff_t p = i < i0 ? p0 : 0; p < kb; p++) dst[p * w + i] = X[i * rs + p];
    } else if (rows == w) {            // general strides: each row of X in turn
        for (int i = 0; i < w; i++)
            for (ptrdiff_t p = 0; p < kb; p++) dst[p * w + i] = X[i * rs + p * cs];
    } else if (rs == 1) {              // the last, partial micro-panel, padded with zeros
        for (ptrdiff_t p = 0; p < kb; p++) {
            for (int i = 0; i < w; i++) dst[p * w + i] = 0;
            for (ptrdiff_t i = 0; i < rows; i++) dst[p * w + i] = X[p * cs + i];
        }
    } else {
        for (ptrdiff_t p = 0; p < kb; p++)
            for (int i = 0; i < w; i++) dst[p * w + i] = i < rows ? X[i * rs + p * cs] : 0;
    }
}

// The block of columns p0 .. p0+kb-1 of the micro-panel that starts at row i0, with w a constant.
// (Compiled without turning short copy loops into calls of memcpy and memset, which cost more than
// the copy itself here.)
__attribute__((optimize("no-tree-loop-distribute-patterns"))) static void FM_CAT(FM_PACK, _block)(ptrdiff_t m, ptrdiff_t k, const FM_REAL *X, ptrdiff_t rs, ptrdiff_t cs,
                                    int w, FM_REAL *dst, ptrdiff_t i0, ptrdiff_t p0)
{
    const ptrdiff_t rows = m - i0 < w ? m - i0 : w, kb = k - p0 < FM_PACK_KB ? k - p0 : FM_PACK_KB;
    const FM_REAL *x = X + i0 * rs + p0 * cs;
    FM_REAL *d = dst + i0 * k + p0 * w;
    switch (w) {
    case 4: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, 4, d); break;
    case 6: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, 6, d); break;
    case 8: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, 8, d); break;
    case 16: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, 16, d); break;
    case 32: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, 32, d); break;
    default: FM_CAT(FM_PACK, _panel)(rows, kb, x, rs, cs, w, d); break;
    }
}

// One micro-panel of a mini-batch read where it lies in its data set (rows or cols not NULL), rows
// i0 .. i0+w-1 (zeros past m). Each column's start is looked up once; when the batch is read transposed
// (rs == 1, as a weight gradient reads it) a micro-panel's values in a column are contiguous. Always
// inlined, so that each common width w below gets a copy where w is a constant.
static inline __attribute__((always_inline)) void
FM_CAT(FM_PACK, _indexed_panel)(ptrdiff_t m, ptrdiff_t k, const FM_REAL *restrict X, ptrdiff_t rs,
                                ptrdiff_t cs, const int64_t *rows, const int64_t *cols, int w, ptrdiff_t i0,
                                FM_REAL *restrict dst)
{
    const ptrdiff_t panel_rows = m - i0 < w ? m - i0 : w;
    for (ptrdiff_t p = 0; p < k; p++) {
        const FM_REAL *x = X + (cols ? (ptrdiff_t)cols[p] : p) * cs;
        FM_REAL *d = dst + p * w;
        if (!rows && rs == 1 && panel_rows == w)
            for (int i = 0; i < w; i++) d[i] = x[i0 + i];
        else
            for (int i = 0; i < w; i++)
                d[i] = i < panel_rows ? x[(rows ? (ptrdiff_t)rows[i0 + i] : i0 + i) * rs] : 0;
    }
}

static void FM_CAT(FM_PACK, _indexed)(ptrdiff_t m, ptrdiff_t k, const FM_REAL *X, ptrdiff_t rs, ptrdiff_t cs,
                                      const int64_t *rows, const int64_t *cols, int w, FM_REAL *dst)
{
    for (ptrdiff_t i0 = 0; i0 < m; i0 += w, dst += w * k) switch (w) {
        case 6: FM_CAT(FM_PACK, _indexed_panel)(m, k, X, rs, cs, rows, cols, 6, i0, dst); break;
        case 12: FM_CAT(FM_PACK, _indexed_panel)(m, k, X, rs, cs, rows, cols, 12, i0, dst); break;
        default: FM_CAT(FM_PACK, _indexed_panel)(m, k, X, rs, cs, rows, cols, w, i0, dst); break;
        }
}

void FM_PACK(ptrdiff_t m, ptrdiff_t k, const FM_REAL *X, ptrdiff_t rs, ptrdiff_t cs, const int64_t *rows,
             const int64_t *cols, int w, FM_REAL *dst)
{
    if (rows || cols) {
        FM_CAT(FM_PACK, _indexed)(m, k, X, rs, cs, rows, cols, w, dst);
        return;
    }
    // Read X along whichever direction is contiguous, so the hardware prefetchers see a few long
    // streams rather than many short ones, a page apart.
    if (cs == 1) {
        // Rows of X contiguous (A as it is, Bᵀ): loop over the micro-panels, then along their rows.
        for (ptrdiff_t i0 = 0; i0 < m; i0 += w)
            for (ptrdiff_t p0 = 0; p0 < k; p0 += FM_PACK_KB) FM_CAT(FM_PACK, _block)(m, k, X, rs, cs, w, dst, i0, p0);
    } else {
        // Columns of X contiguous (Aᵀ, B as it is): loop over FM_PACK_KB columns, then across them.
        for (ptrdiff_t p0 = 0; p0 < k; p0 += FM_PACK_KB)
            for (ptrdiff_t i0 = 0; i0 < m; i0 += w) FM_CAT(FM_PACK, _block)(m, k, X, rs, cs, w, dst, i0, p0);
    }
}

// The k4 packing (contract in fm_gemm.h): each group of 4 values of p, 4 x 4 blocks of X at a time
// (FM_TB x FM_TB transposes) where rows of X are contiguous (rs == 1, the last columns of B as it is).
void FM_CAT(FM_PACK, _k4)(ptrdiff_t n_t, ptrdiff_t k, const FM_REAL *X, ptrdiff_t rs, ptrdiff_t cs, ptrdiff_t w,
                          FM_REAL *dst)
{
    for (ptrdiff_t p0 = 0; p0 < k; p0 += 4, dst += 4 * w)
        for (ptrdiff_t j0 = 0; j0 < w; j0 += 4) {
            const FM_REAL *x = X + j0 * rs + p0 * cs;
            FM_REAL *d = dst + j0 * 4;
            if (rs == 1 && j0 + 4 <= n_t && p0 + 4 <= k) {
                for (int jb = 0; jb < 4; jb += FM_TB)
                    for (int eb = 0; eb < 4; eb += FM_TB) FM_TRANSPOSE(x + eb * cs + jb, cs, d + jb * 4 + eb, 4);
            } else {
                for (ptrdiff_t j = 0; j < 4; j++)
                    for (ptrdiff_t e = 0; e < 4; e++)
                        d[j * 4 + e] = j0 + j < n_t && p0 + e < k ? x[j * rs + e * cs] : 0;
            }
        }
}

#undef FM_REAL
#undef FM_PACK
#undef FM_TRANSPOSE
#undef FM_TB
