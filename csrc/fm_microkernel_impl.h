// fm_microkernel_impl.h: template of the register-blocked micro-kernels (see the contract in fm_gemm.h).
//
// Include after defining
//   FM_REAL  float or double          FM_VL  values per SIMD vector (16 bytes: 4 floats, 32: 8, 64: 16)
//   FM_UKR   the name of the wide kernel, FM_WIDE_MR rows x 2 vectors (NR = 2 * FM_VL); the narrow
//            kernel, 12 rows x 1 vector, for products at most one vector wide, is FM_UKR##_narrow
// and, optionally,
//   FM_WIDE_MR  the wide kernel's rows: 6 (the default: 16 vector registers) or 12 (32 registers)
// and masked loads and stores of the instruction set for the partial vector at the right
// edge of a tile (otherwise they go lane by lane):
//   FM_MASK_T                the mask's type         FM_MASK(lanes)               the first lanes lanes
//   FM_LOAD_MASKED(p, mask)  those lanes, 0 elsewhere   FM_STORE_MASKED(p, mask, v)  only those lanes
//   FM_CHEAP_MASKS           masked loads and stores cost about what plain ones do: a tile of fewer
//                            than FM_MR rows treats its last vector as partial (one copy, not two)
// The file #undefs them all at the end, so it can be included again for the other type. The instruction
// set comes from the including file (`#pragma GCC target("avx2,fma")`, ...): the same C source becomes
// an SSE2, an AVX2 or an AVX-512 kernel, written with GCC vector extensions rather than intrinsics.
//
// The m_e x NV_E accumulator vectors live in registers through the whole k loop: each step loads one row
// of B (NV_E vectors) and broadcasts m_e values of A, and does m_e * NV_E vector multiply-adds. There is
// one copy of that loop for every tile shape (m_e = 1 .. MR rows, 1 .. NV vectors, the last one whole or
// partial), so an edge tile does only the multiply-adds it needs: m = 10 costs 10 rows, not 12.
// Every shape adds the products for one element of C in the same order (p = 0, 1, ..., k-1, one fused
// multiply-add each), so an element's value does not depend on which tile (or kernel) it falls in.
// Why a narrow kernel: a multiply-add takes about 4 cycles and a core starts two a cycle, so it needs
// at least 8 independent sums in flight; a wide tile one vector wide has only 6, a narrow tile 12.
// Why 12 rows in the wide kernel with 32 registers (AVX-512): 24 accumulators still leave room for the
// row of B and the broadcast value, and twice as many rows of A are read at once. When those rows come
// from memory (a mini-batch read in place in its data set) more of their loads are in flight together
// (benchmarks/RESULTS.md, "Twelve-row tiles").
// Why the rows of A are requested ahead (A_ROWS: a mini-batch read in place): the hardware's own
// prefetchers keep too few of their cache lines in flight while the multiply-adds run, and a new tile's
// rows start cold. So in a full tile that another follows, every step also requests the line FM_AHEAD
// bytes further along one or two rows (in turn), or once a row is nearly done, the same place in the
// next tile's rows: one unbroken stream (benchmarks/RESULTS.md, "Rows requested ahead").
// A weight gradient (A_COLS with rsa == 1) reads the same rows again, a tile's few values of one row
// a step, and its tiles go along the rows; not all of the batch need still be in the L2 by then, and
// nothing else requests a row's line before the step that reads it. So each step also requests the
// line FM_COLS_AHEAD bytes further along that row, which a later tile reads (benchmarks/RESULTS.md,
// "Weight-gradient rows requested ahead"). FM_AHEAD and FM_COLS_AHEAD are in fm_tuning.h.

#ifndef FM_CAT
#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)
#endif
#ifndef FM_WIDE_MR
#define FM_WIDE_MR 6
#endif
#if FM_WIDE_MR != 6 && FM_WIDE_MR != 12
#error "FM_WIDE_MR must be 6 or 12"
#endif
#define FM_MR 12   // the most rows of any tile (the narrow kernel's, and the 12-row wide kernel's)
#define FM_NV 2    // the most vectors per row (the wide kernel's)
#define FM_VEC FM_CAT(FM_UKR, _vec)
#define FM_VEC_U FM_CAT(FM_UKR, _vec_u)
#define FM_FORCE_INLINE static inline __attribute__((always_inline))
typedef FM_REAL FM_VEC __attribute__((vector_size(FM_VL * sizeof(FM_REAL))));
// An unaligned view: tiles of C, and rows of B read in place, start anywhere.
typedef FM_REAL FM_VEC_U __attribute__((vector_size(FM_VL * sizeof(FM_REAL)), aligned(sizeof(FM_REAL))));

#ifndef FM_MASK_T   // no masked loads and stores: lane by lane, each lane a test the unrolling resolves
#define FM_MASK_T ptrdiff_t
#define FM_MASK(lanes) (lanes)
#define FM_LOAD_MASKED(p, mask) FM_CAT(FM_UKR, _load_lanes)(p, mask)
#define FM_STORE_MASKED(p, mask, v) FM_CAT(FM_UKR, _store_lanes)(p, mask, v)
FM_FORCE_INLINE FM_VEC FM_CAT(FM_UKR, _load_lanes)(const FM_REAL *p, ptrdiff_t lanes)
{
    FM_VEC v = {0};
#pragma GCC unroll 1
    for (ptrdiff_t l = 0; l < lanes; l++) v[l] = p[l];
    return v;
}
FM_FORCE_INLINE void FM_CAT(FM_UKR, _store_lanes)(FM_REAL *p, ptrdiff_t lanes, FM_VEC v)
{
#pragma GCC unroll 1
    for (ptrdiff_t l = 0; l < lanes; l++) p[l] = v[l];
}
#endif

// The new value of one vector of C: alpha * acc + beta * c_old (c_old unused when beta == 0). The one
// expression for full vectors and for the partial ones at an edge.
FM_FORCE_INLINE FM_VEC FM_CAT(FM_UKR, _update)(FM_REAL alpha, FM_VEC acc, FM_REAL beta, FM_VEC c_old)
{
    return beta == 0 ? alpha * acc : alpha * acc + beta * c_old;
}

// One tile of MR_E rows and NV_E vectors of C, the last of them PARTIAL (n_e - (NV_E-1)*VL lanes) or
// whole; PACKED_A: A is a packed micro-panel of MR_E rows (constant addressing; full tiles only);
// A_ROWS: row i of A is row a_rows[i] (a mini-batch in its data set) if a_rows is given, else row i
// (looked up once per tile: the k loop is the same either way); A_ROWS == 2: also
// request rows ahead, A's rows being contiguous (csa == 1) and a_rows[MR_E .. MR_E + next_rows - 1]
// the next tile's (next_rows > 0); A_COLS: column p of A is column a_cols[p] (the same,
// transposed), else column p. MR_E, NV_E, PARTIAL, PACKED_A, A_ROWS and A_COLS are constants at every
// call, so each call becomes its own straight-line copy.
FM_FORCE_INLINE void FM_CAT(FM_UKR, _tile)(const int MR_E, const int NV_E, const int PARTIAL,
                                           const int PACKED_A, const int A_ROWS, const int A_COLS,
                                           ptrdiff_t n_e, ptrdiff_t k, FM_REAL alpha,
                                           const FM_REAL *restrict a, ptrdiff_t rsa, ptrdiff_t csa,
                                           const int64_t *a_rows, ptrdiff_t next_rows,
                                           const int64_t *a_cols,
                                           const FM_REAL *restrict b,
                                           ptrdiff_t rsb, FM_REAL beta, FM_REAL *restrict c, ptrdiff_t ldc)
{
    FM_VEC acc[FM_MR][FM_NV];
    ptrdiff_t row[FM_MR];   // where row i of A starts (the k loop holds each in a register anyway)
    const FM_MASK_T mask = FM_MASK(n_e - (NV_E - 1) * FM_VL);   // used only when PARTIAL
#pragma GCC unroll 16
    for (int i = 0; i < MR_E; i++) {
        row[i] = PACKED_A ? i : (A_ROWS && a_rows ? (ptrdiff_t)a_rows[i] : i) * rsa;
        __builtin_prefetch(c + i * ldc, 1);
#pragma GCC unroll 8
        for (int v = 0; v < NV_E; v++) acc[i][v] = (FM_VEC){0};
    }
    if (PACKED_A) csa = MR_E;
    // Requests ahead (A_ROWS == 2; a request is a hint, and never faults): enough a step that every
    // line of every row gets one, rows i and i + turn (and so on) at step p, with i = p mod turn;
    // next[i] is where the next tile's row i starts.
    const int per_step = (MR_E * (int)sizeof(FM_REAL) + FM_CACHE_LINE_BYTES - 1) / FM_CACHE_LINE_BYTES;
    const int turn = (MR_E + per_step - 1) / per_step;
    const ptrdiff_t ahead = FM_AHEAD / (ptrdiff_t)sizeof(FM_REAL);
    const int request = A_ROWS == 2;
    int ahead_row = 0;
    ptrdiff_t next[FM_MR];
#pragma GCC unroll 16
    for (int i = 0; i < MR_E; i++)
        next[i] = request && i < next_rows ? (ptrdiff_t)a_rows[MR_E + i] * rsa : -1;
    // Unrolled by 4: the loop's own additions and branch are then a small part of a step.
#pragma GCC unroll 4
    for (ptrdiff_t p = 0; p < k; p++, b += rsb) {
        const FM_REAL *a_p = a + (A_COLS ? (ptrdiff_t)a_cols[p] : p) * csa;   // column p of A
        if (A_COLS && rsa == 1) __builtin_prefetch(a_p + FM_COLS_AHEAD / (ptrdiff_t)sizeof(FM_REAL));
        if (request) {
#pragma GCC unroll 2
            for (int r = 0; r < per_step; r++) {
                const int i = ahead_row + r * turn;
                if (i < MR_E) {
                    if (p + ahead < k)
                        __builtin_prefetch(a_p + row[i] + ahead);
                    else if (next[i] >= 0)
                        __builtin_prefetch(a + next[i] + (p + ahead - k));
                }
            }
            ahead_row = ahead_row + 1 == turn ? 0 : ahead_row + 1;
        }
        FM_VEC b_row[FM_NV];
#pragma GCC unroll 8
        for (int v = 0; v < NV_E; v++)
            b_row[v] = PARTIAL && v == NV_E - 1 ? FM_LOAD_MASKED(b + v * FM_VL, mask)
                                                : *(const FM_VEC_U *)(b + v * FM_VL);
#pragma GCC unroll 16
        for (int i = 0; i < MR_E; i++) {
            const FM_REAL a_ip = a_p[row[i]];
#pragma GCC unroll 8
            for (int v = 0; v < NV_E; v++) acc[i][v] += a_ip * b_row[v];
        }
    }
    // Only the m_e x n_e corner of C is read (beta != 0) and written. Every old value is read before
    // any is written: a partial vector's store spans lanes of the next row that it leaves alone, and a
    // load of that row issued behind the store would wait until the store reached the cache.
    FM_VEC c_old[FM_MR][FM_NV];
#pragma GCC unroll 16
    for (int i = 0; i < MR_E; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV_E; v++) {
            const FM_REAL *c_iv = c + i * ldc + v * FM_VL;
            c_old[i][v] = beta == 0                      ? (FM_VEC){0}
                          : PARTIAL && v == NV_E - 1 ? FM_LOAD_MASKED(c_iv, mask)
                                                     : *(const FM_VEC_U *)c_iv;
        }
#pragma GCC unroll 16
    for (int i = 0; i < MR_E; i++)
#pragma GCC unroll 8
        for (int v = 0; v < NV_E; v++) {
            FM_REAL *c_iv = c + i * ldc + v * FM_VL;
            const FM_VEC c_new = FM_CAT(FM_UKR, _update)(alpha, acc[i][v], beta, c_old[i][v]);
            if (PARTIAL && v == NV_E - 1)
                FM_STORE_MASKED(c_iv, mask, c_new);
            else
                *(FM_VEC_U *)c_iv = c_new;
        }
}

// One case per tile shape: m_e = 1 .. MR rows (a full tile of packed A or of A in place) by
// 1 .. NV vectors, the last whole or partial. Only a full tile requests rows ahead (AHEAD): a tile
// that another follows is a full one, and a lone tile (a mini-batch of 10) streamed as fast without.
#define FM_TILE(MR_E, NV_E, PARTIAL, PACKED_A, A_ROWS, A_COLS)                                         \
    FM_CAT(FM_UKR, _tile)(MR_E, NV_E, PARTIAL, PACKED_A, A_ROWS, A_COLS, n_e, k, alpha, a, rsa, csa,     \
                          a_rows, next_rows, a_cols, b, rsb, beta, c, ldc)
#define FM_TILE_INDEX(MR_E, NV_E, PARTIAL, PACKED_A, AHEAD)                                            \
    if (a_rows && AHEAD && next_rows > 0 && csa == 1) FM_TILE(MR_E, NV_E, PARTIAL, PACKED_A, 2, 0);      \
    else if (a_cols) FM_TILE(MR_E, NV_E, PARTIAL, PACKED_A, 0, 1);                                       \
    else FM_TILE(MR_E, NV_E, PARTIAL, PACKED_A, 1, 0);
// With FM_CHEAP_MASKS a tile of fewer rows than a full one (an edge of C, or a small batch) has one
// copy, its last vector masked whether it is partial or not. Full tiles, where nearly all the work of
// a large product is done, keep a copy without masks: a masked load of B at every step made C1's float
// training loop 4% slower (benchmarks/RESULTS.md, "Build time").
#ifdef FM_CHEAP_MASKS
#define FM_ONE_EDGE_COPY 1
#else
#define FM_ONE_EDGE_COPY 0
#endif
#define FM_TILE_VECTORS(MR_E, NV_E, PACKED_A, AHEAD)                                                   \
    if (FM_ONE_EDGE_COPY && MR_E < FM_MR) {                                                            \
        FM_TILE_INDEX(MR_E, NV_E, 1, PACKED_A, AHEAD)                                                  \
    } else if (n_e % FM_VL != 0) {                                                                     \
        FM_TILE_INDEX(MR_E, NV_E, 1, PACKED_A, AHEAD)                                                  \
    } else {                                                                                           \
        FM_TILE_INDEX(MR_E, NV_E, 0, PACKED_A, AHEAD)                                                  \
    }
#define FM_ROWS(MR_E, TILE)   case MR_E: TILE(MR_E, 0, 0); break;
#define FM_FULL(MR, TILE)                                                                              \
    default:                                                                                           \
        if (rsa == 1 && csa == MR && !a_rows && !a_cols) {                                             \
            TILE(MR, 1, 0)                                                                             \
        } else {                                                                                       \
            TILE(MR, 0, 1)                                                                             \
        }
#define FM_SIGNATURE(NAME)                                                                             \
    void NAME(ptrdiff_t m_e, ptrdiff_t n_e, ptrdiff_t k, FM_REAL alpha, const FM_REAL *restrict a,     \
              ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows, ptrdiff_t next_rows,                \
              const int64_t *a_cols, const FM_REAL *restrict b, ptrdiff_t rsb, FM_REAL beta,            \
              FM_REAL *restrict c, ptrdiff_t ldc)

// The wide kernel: FM_WIDE_MR rows x 2 vectors.
#define FM_WIDE(MR_E, PACKED_A, AHEAD)                                                                 \
    if (n_e > FM_VL) {                                                                                 \
        FM_TILE_VECTORS(MR_E, 2, PACKED_A, AHEAD)                                                      \
    } else {                                                                                           \
        FM_TILE_VECTORS(MR_E, 1, PACKED_A, AHEAD)                                                      \
    }
// The wide kernel's tile copies are in FM_UKR_switch, and those of a weight gradient (A read
// transposed through a_cols: the rows of a batch, rsa == 1, the only stride the driver passes with
// a_cols) are compiled apart, in FM_UKR_cols. There rsa is the constant 1, so the k loop broadcasts
// A's values from fixed offsets rather than stepping by rsa, and the other copies' code (registers
// are allocated across one function) is not disturbed. This makes C1's float64 training loop at 1
// thread 3.6% faster (bench_csrc: no difference); the narrow kernel (float's for C1) is slower split
// the same way, so it is not (benchmarks/RESULTS.md, "Weight-gradient tiles compiled apart").
FM_FORCE_INLINE FM_SIGNATURE(FM_CAT(FM_UKR, _switch))
{
    switch (m_e) {
    FM_ROWS(1, FM_WIDE) FM_ROWS(2, FM_WIDE) FM_ROWS(3, FM_WIDE) FM_ROWS(4, FM_WIDE) FM_ROWS(5, FM_WIDE)
#if FM_WIDE_MR == 12
    FM_ROWS(6, FM_WIDE) FM_ROWS(7, FM_WIDE) FM_ROWS(8, FM_WIDE) FM_ROWS(9, FM_WIDE)
    FM_ROWS(10, FM_WIDE) FM_ROWS(11, FM_WIDE)
#endif
    FM_FULL(FM_WIDE_MR, FM_WIDE)
    }
}
static __attribute__((noinline)) FM_SIGNATURE(FM_CAT(FM_UKR, _cols))
{
    (void)a_rows, (void)next_rows, (void)rsa;   // no index of rows comes with a_cols, and rsa is 1
    if (!a_cols) __builtin_unreachable();       // so the copies without an index are left out
    FM_CAT(FM_UKR, _switch)(m_e, n_e, k, alpha, a, 1, csa, NULL, 0, a_cols, b, rsb, beta, c, ldc);
}
FM_SIGNATURE(FM_UKR)
{
    if (a_cols)
        FM_CAT(FM_UKR, _cols)(m_e, n_e, k, alpha, a, rsa, csa, NULL, 0, a_cols, b, rsb, beta, c, ldc);
    else
        FM_CAT(FM_UKR, _switch)(m_e, n_e, k, alpha, a, rsa, csa, a_rows, next_rows, NULL, b, rsb, beta, c,
                                ldc);
}

// The narrow kernel: 12 rows x 1 vector (n_e <= FM_VL).
#define FM_NARROW(MR_E, PACKED_A, AHEAD) FM_TILE_VECTORS(MR_E, 1, PACKED_A, AHEAD)
FM_SIGNATURE(FM_CAT(FM_UKR, _narrow))
{
    switch (m_e) {
    FM_ROWS(1, FM_NARROW) FM_ROWS(2, FM_NARROW) FM_ROWS(3, FM_NARROW) FM_ROWS(4, FM_NARROW)
    FM_ROWS(5, FM_NARROW) FM_ROWS(6, FM_NARROW) FM_ROWS(7, FM_NARROW) FM_ROWS(8, FM_NARROW)
    FM_ROWS(9, FM_NARROW) FM_ROWS(10, FM_NARROW) FM_ROWS(11, FM_NARROW)
    FM_FULL(12, FM_NARROW)
    }
}
#undef FM_TILE
#undef FM_TILE_INDEX
#undef FM_TILE_VECTORS
#undef FM_ROWS
#undef FM_FULL
#undef FM_SIGNATURE
#undef FM_WIDE
#undef FM_NARROW

#undef FM_VEC
#undef FM_VEC_U
#undef FM_FORCE_INLINE
#undef FM_MASK_T
#undef FM_MASK
#undef FM_LOAD_MASKED
#undef FM_STORE_MASKED
#undef FM_REAL
#undef FM_VL
#undef FM_MR
#undef FM_NV
#undef FM_UKR
#undef FM_WIDE_MR
#undef FM_CHEAP_MASKS
#undef FM_ONE_EDGE_COPY
