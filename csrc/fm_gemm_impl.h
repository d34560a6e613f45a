// fm_gemm_impl.h: template of the blocked GEMM driver, included twice by fm_gemm.c.
// Include after defining FM_REAL (float or double), FM_X (s or d, the BLAS prefix) and the block
// sizes FM_MC, FM_KC, FM_NC; they are #undef'd at the end.

#define FM_FN(name) FM_CAT(FM_CAT(fm_, FM_X), name)   // FM_FN(gemm) is fm_sgemm or fm_dgemm
#define FM_UKR_T FM_CAT(FM_CAT(fm_, FM_X), ukr)        // the micro-kernel descriptor type

// fm_?scale: C := beta * C for the m x n matrix C (row stride ldc); beta == 0 writes zeros, never reads C.
static void FM_FN(scale)(ptrdiff_t m, ptrdiff_t n, FM_REAL beta, FM_REAL *C, ptrdiff_t ldc)
{
    for (ptrdiff_t i = 0; i < m; i++)
        for (ptrdiff_t j = 0; j < n; j++) C[i * ldc + j] = beta == 0 ? 0 : beta * C[i * ldc + j];
}

// fm_?macro_kernel: C := alpha * A * B + beta * C for an mc x kc block of A (strides rsa, csa; indexes
//   a_rows, a_cols as in fm_?gemm) and a kc x nc panel of B, one micro-kernel call per MR x NR tile
//   of C. Micro-panel jr / NR of B starts at b + jr * b_jr and has row stride rsb: packed (b_jr = kc,
//   rsb = NR) or read in place (b_jr = 1).
//   a_pack: A_IN_PLACE, the micro-kernel reads A in place; A_PACK, A is packed into a_pack first (mc x kc
//   values, rounded up to whole micro-panels); A_PACKED, a_pack holds that block packed already.
static void FM_FN(macro_kernel)(const FM_UKR_T *u, ptrdiff_t mc, ptrdiff_t nc, ptrdiff_t kc,
                                FM_REAL alpha, const FM_REAL *A, ptrdiff_t rsa, ptrdiff_t csa,
                                const int64_t *a_rows, const int64_t *a_cols, int pack_a,
                                const FM_REAL *b, ptrdiff_t b_jr, ptrdiff_t rsb, FM_REAL beta,
                                FM_REAL *C, ptrdiff_t ldc, FM_REAL *a_pack)
{
    const ptrdiff_t mr = u->mr, nr = u->nr;
    // Micro-panel ir / mr of A starts at A + ir / mr * a_step (at row a_rows[ir] when A's rows are
    // indexed) and has strides (a_rs, a_cs).
    ptrdiff_t a_step = a_rows ? 0 : mr * rsa, a_rs = rsa, a_cs = csa;
    if (pack_a == A_PACK) FM_FN(pack)(mc, kc, A, rsa, csa, a_rows, a_cols, (int)mr, a_pack);
    if (pack_a != A_IN_PLACE) A = a_pack, a_step = mr * kc, a_rs = 1, a_cs = mr, a_rows = a_cols = NULL;
    // Loop over the NR-wide micro-panels of B (the columns of C), each one staying in L1.
    for (ptrdiff_t jr = 0; jr < nc; jr += nr) {
        const FM_REAL *a = A, *b_panel = b + jr * b_jr;
        const ptrdiff_t n_e = nc - jr < nr ? nc - jr : nr;
        // Loop over the MR-tall micro-panels of A (the rows of C): one micro-kernel call per tile.
        for (ptrdiff_t ir = 0; ir < mc; ir += mr, a += a_step) {
            const ptrdiff_t m_e = mc - ir < mr ? mc - ir : mr;
            const ptrdiff_t rest = mc - ir - m_e;   // rows after this tile's: the next tile's, if any
            u->fn(m_e, n_e, kc, alpha, a, a_rs, a_cs, fm_index_from(a_rows, ir), rest < mr ? rest : mr,
                  a_cols, b_panel, rsb, beta, C + ir * ldc + jr, ldc);
        }
    }
}

// fm_?kernel: the level's micro-kernel for a product n wide: the narrow one if n fits it.
static const FM_UKR_T *FM_FN(kernel)(const fm_gemm_level *level, ptrdiff_t n)
{
    const FM_UKR_T *narrow = &level->FM_CAT(FM_X, _narrow);
    return n <= narrow->nr ? narrow : &level->FM_X;
}

// fm_?kernels: how the level computes an n-wide product: the first n_main columns (returned) with *u,
//   and the rest with *tail (NULL when there is no rest). The rest is the last n mod VL columns (VL: the
//   narrow kernel's width, one vector) when the level has a half kernel as wide as them: 784 -> 100 on
//   AVX-512 in float has a last vector of 4 columns, which costs a 16-wide kernel as much as 16
//   (benchmarks/RESULTS.md, "Half-width tails"). They go to the tail kernel where the level has one and
//   A is read along its rows, else to the half kernel; a product no wider than them, to the half kernel.
static ptrdiff_t FM_FN(kernels)(const fm_gemm_level *level, ptrdiff_t n, ptrdiff_t csa, const int64_t *a_cols,
                                const FM_UKR_T **u, const FM_UKR_T **tail)
{
    const FM_UKR_T *half = &level->FM_CAT(FM_X, _half), *k4 = &level->FM_CAT(FM_X, _tail);
    const ptrdiff_t rest = half->fn != NULL ? n % level->FM_CAT(FM_X, _narrow).nr : 0;
    *tail = NULL;
    if (rest == 0 || rest > half->nr) {
        *u = FM_FN(kernel)(level, n);
        return n;
    }
    if (rest == n) {   // every level's half kernel has its wide and narrow kernels' MR (fm_microkernel.c)
        *u = half;
        return n;
    }
    *u = FM_FN(kernel)(level, n - rest);
    *tail = k4->fn != NULL && csa == 1 && a_cols == NULL ? k4 : half;
    return n - rest;
}

// fm_?gemm_tile: C := alpha * A * B + beta * C (contract of fm_?gemm) on one thread, with alpha != 0,
//   k >= 1 and that thread's workspace: work holds fm_?thread_workspace(m, n, k) values, aligned.
//   With n_tail > 0, the n_tail columns after the first n are computed too, by tail_u (the level's tail
//   or half kernel, fm_?kernels; a half kernel's MR is u's): each block of A is still in cache then.
static void FM_FN(gemm_tile)(const FM_UKR_T *u, const FM_UKR_T *tail_u, ptrdiff_t m, ptrdiff_t n,
                             ptrdiff_t n_tail, ptrdiff_t k, FM_REAL alpha, const FM_REAL *A, ptrdiff_t rsa,
                             ptrdiff_t csa, const int64_t *a_rows, const int64_t *a_cols, const FM_REAL *B,
                             ptrdiff_t rsb, ptrdiff_t csb, FM_REAL beta, FM_REAL *C, ptrdiff_t ldc,
                             FM_REAL *work)
{
    const ptrdiff_t mr = u->mr, nr = u->nr;
    // Blocks of nearly equal size (k = 784 is 4 x 196, not 3 x 256 + 16), so no block is a sliver.
    // They depend on m, n, k and the level only, so each element of C sees the same sums whatever
    // the thread tiles are: the result is bit-identical for any nthreads.
    const ptrdiff_t kc_max = fm_balanced_block(k, FM_KC, 1);
    const ptrdiff_t mc_max = fm_balanced_block(m, FM_MC / mr * mr, mr);
    const ptrdiff_t nc_max = fm_balanced_block(n, FM_NC / nr * nr, nr);
    FM_REAL *b_pack = work;                              // kc_max x nc_max, NR-wide micro-panels
    FM_REAL *tail_pack = b_pack + kc_max * nc_max;       // kc_max (rounded up to 4) x the tail's NR
    FM_REAL *a_pack = tail_pack + (n_tail > 0 ? (kc_max + 3) / 4 * 4 * tail_u->nr : 0);   // mc_max x kc_max
    const ptrdiff_t k4_width = (n_tail + 3) / 4 * 4;     // a k4 kernel's packed tail: 4 * k4_width a group
    // Packing A pays when each micro-panel of A is then used for several micro-panels of B, except
    // that contiguous rows of A (csa == 1) can be read in place as fast as packed ones, if they do not
    // compete for the same L1 sets. Transposing them into micro-panels would cost more than it saves.
    // (Rows picked by an index lie anywhere: as likely to share sets as any others in a cache.)
    // Columns picked by an index (a weight gradient) are read in place only along contiguous rows
    // (rsa == 1, as in training): the micro-kernels have no copy for other strides.
    const int pack_a = (a_cols && rsa != 1) ||
                       (n > FM_GEMM_PACK_A_MIN_N &&
                        (csa != 1 || (!a_rows && fm_rows_share_l1_sets(rsa * (ptrdiff_t)sizeof(FM_REAL),
                                                                       (int)mr))));
    // Packing B pays when each micro-panel of B is then used for many micro-panels of A, except that
    // contiguous rows of B (csb == 1) can be read in place as fast as packed ones when they are about as
    // narrow as a micro-panel (they span few cache lines). Packing also costs a pass over B: when A has
    // only a few micro-panels (small batches), reading B in place is cheaper whatever its width, and so
    // it is for up to FM_GEMM_B_IN_PLACE_MAX_PANELS of them if a micro-panel's rows span two cache lines
    // or more (AVX-512's) and B's next rows (16 checked) do not land on the same L1 sets (784 -> 100:
    // 400 or 800 bytes apart, not 1-4 KiB as in a 256- or 1024-wide layer).
    const ptrdiff_t a_panels = (m + mr - 1) / mr;
    const int b_in_place = csb == 1 && (a_panels <= FM_GEMM_PACK_B_MIN_PANELS ||
                                        rsb <= FM_GEMM_B_IN_PLACE_MAX_LD * nr ||
                                        (a_panels <= FM_GEMM_B_IN_PLACE_MAX_PANELS &&
                                         nr * (ptrdiff_t)sizeof(FM_REAL) >= 2 * FM_CACHE_LINE_BYTES &&
                                         !fm_rows_share_l1_sets(rsb * (ptrdiff_t)sizeof(FM_REAL), 16)));

    // Loop over n in blocks of NC: the columns of B and C; the tail goes with the last block.
    for (ptrdiff_t jc = 0; jc < n; jc += nc_max) {
        const ptrdiff_t nc = n - jc < nc_max ? n - jc : nc_max;
        const ptrdiff_t tail = jc + nc == n ? n_tail : 0;
        // Loop over k in blocks of KC; pack a KC x NC panel of B (Bᵀ read with swapped strides),
        // unless it is read in place.
        for (ptrdiff_t pc = 0; pc < k; pc += kc_max) {
            const ptrdiff_t kc = k - pc < kc_max ? k - pc : kc_max;
            const FM_REAL *b = B + pc * rsb + jc * csb, *b_tail = B + pc * rsb + n * csb;
            if (!b_in_place) FM_FN(pack)(nc, kc, b, csb, rsb, NULL, NULL, (int)nr, b_pack);
            if (tail && tail_u->k4) FM_FN(pack_k4)(tail, kc, b_tail, csb, rsb, k4_width, tail_pack);
            else if (tail && !b_in_place) FM_FN(pack)(tail, kc, b_tail, csb, rsb, NULL, NULL, tail_u->nr, tail_pack);
            const FM_REAL beta_pc = pc == 0 ? beta : 1;   // later k blocks add to the earlier ones
            // Loop over m in blocks of MC; the macro-kernel packs an MC x KC block of A if it pays.
            for (ptrdiff_t ic = 0; ic < m; ic += mc_max) {
                const ptrdiff_t mc = m - ic < mc_max ? m - ic : mc_max;
                const FM_REAL *a = A + (a_rows ? 0 : ic * rsa) + (a_cols ? 0 : pc * csa);
                FM_REAL *c = C + ic * ldc + jc;
                FM_FN(macro_kernel)(u, mc, nc, kc, alpha, a, rsa, csa, fm_index_from(a_rows, ic),
                                    fm_index_from(a_cols, pc), pack_a ? A_PACK : A_IN_PLACE,
                                    b_in_place ? b : b_pack, b_in_place ? 1 : kc, b_in_place ? rsb : nr,
                                    beta_pc, c, ldc, a_pack);
                if (tail && tail_u->k4)
                    FM_FN(macro_kernel)(tail_u, mc, tail, kc, alpha, a, rsa, csa, fm_index_from(a_rows, ic), NULL,
                                        A_IN_PLACE, tail_pack, 0, 4 * k4_width, beta_pc, c + nc, ldc, a_pack);
                else if (tail)
                    FM_FN(macro_kernel)(tail_u, mc, tail, kc, alpha, a, rsa, csa, fm_index_from(a_rows, ic),
                                        fm_index_from(a_cols, pc), pack_a ? A_PACKED : A_IN_PLACE,
                                        b_in_place ? b_tail : tail_pack, b_in_place ? 1 : kc,
                                        b_in_place ? rsb : tail_u->nr, beta_pc, c + nc, ldc, a_pack);
            }
        }
    }
}

// fm_?thread_workspace: values of workspace one thread needs for any thread tile of an m x n x k
//   product and any level (a multiple of FM_ALIGN bytes): a KC x NC panel of B and an MC x KC block
//   of A, each rounded up for the widest micro-tile, and a KC-tall panel for a tail (with KC rounded up
//   to 4 for a k4 kernel: the NR_MAX columns beyond NC's rounding hold it).
static size_t FM_FN(thread_workspace)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k)
{
    const size_t kc = (size_t)(k < FM_KC ? k : FM_KC);
    const size_t nc = (size_t)(n < FM_NC ? n : FM_NC) + 2 * FM_NR_MAX;
    const size_t mc = (size_t)(m < FM_MC ? m : FM_MC) + FM_MR_MAX;
    const size_t per_line = FM_ALIGN / sizeof(FM_REAL);
    const size_t values = kc * nc + mc * kc;
    return (values + per_line - 1) / per_line * per_line;
}

// fm_?gemm_workspace_size: see fm_gemm.h. Room for nthreads thread workspaces plus the alignment.
size_t FM_FN(gemm_workspace_size)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads)
{
    if (m < 0 || n < 0 || k < 0 || nthreads < 1) return 1;
    return (size_t)nthreads * FM_FN(thread_workspace)(m, n, k) + FM_ALIGN / sizeof(FM_REAL);
}

// fm_?gemm_part: tile t of the grid of an m x n x k product (contract of fm_?gemm, with k >= 1 and
//   alpha != 0, or k == 0 / alpha == 0 for C := beta * C), computed with the given thread workspace;
//   returns the tile (empty if the grid has no tile t or it holds no element of C). The tiles of the
//   last column group also compute the n_tail columns after the first n with tail_u.
static fm_tile FM_FN(gemm_part)(const FM_UKR_T *u, const FM_UKR_T *tail_u, fm_grid grid, int t,
                                ptrdiff_t m, ptrdiff_t n, ptrdiff_t n_tail, ptrdiff_t k, FM_REAL alpha,
                                const FM_REAL *A, ptrdiff_t rsa, ptrdiff_t csa,
                                const int64_t *a_rows, const int64_t *a_cols, const FM_REAL *B,
                                ptrdiff_t rsb, ptrdiff_t csb, FM_REAL beta, FM_REAL *C, ptrdiff_t ldc,
                                FM_REAL *work)
{
    const fm_tile none = {0, 0, 0, 0};
    if (t >= grid.tm * grid.tn) return none;
    const fm_range rows = fm_grid_part(m, u->mr, grid.tm, t / grid.tn);
    const fm_range cols = fm_grid_part(n, u->nr, grid.tn, t % grid.tn);
    if (rows.size == 0 || cols.size == 0) return none;
    const ptrdiff_t tail = cols.start + cols.size == n ? n_tail : 0;
    FM_REAL *c = C + rows.start * ldc + cols.start;
    if (k == 0 || alpha == 0)   // as in BLAS, A and B are not read
        FM_FN(scale)(rows.size, cols.size + tail, beta, c, ldc);
    else
        FM_FN(gemm_tile)(u, tail_u, rows.size, cols.size, tail, k, alpha, A + (a_rows ? 0 : rows.start * rsa),
                         rsa, csa, fm_index_from(a_rows, rows.start), a_cols, B + cols.start * csb, rsb,
                         csb, beta, c, ldc, work);
    return (fm_tile){rows.start, rows.size, cols.start, cols.size + tail};
}

// A product split into thread tiles: the arguments of fm_?gemm_part, for fm_?gemm_task.
typedef struct {
    const FM_UKR_T *u, *tail_u;
    fm_grid grid;
    ptrdiff_t m, n, n_tail, k;
    FM_REAL alpha;
    const FM_REAL *A;
    ptrdiff_t rsa, csa;
    const int64_t *a_rows, *a_cols;
    const FM_REAL *B;
    ptrdiff_t rsb, csb;
    FM_REAL beta;
    FM_REAL *C;
    ptrdiff_t ldc;
    FM_REAL *work;
    size_t per_thread;
} FM_FN(gemm_job);

// fm_?gemm_task: thread id of a team of count computes tiles id, id + count, ... of a gemm_job.
static void FM_FN(gemm_task)(void *arg, int id, int count)
{
    const FM_FN(gemm_job) *j = arg;
    for (int t = id; t < j->grid.tm * j->grid.tn; t += count)
        FM_FN(gemm_part)(j->u, j->tail_u, j->grid, t, j->m, j->n, j->n_tail, j->k, j->alpha, j->A, j->rsa,
                         j->csa, j->a_rows, j->a_cols, j->B, j->rsb, j->csb, j->beta, j->C, j->ldc,
                         j->work + (size_t)id * j->per_thread);
}

// fm_?gemm_with: fm_?gemm_at_level's product, m, n >= 1, with the micro-kernel u, and tail_u (the tail
//   or half kernel) for the n_tail columns after the first n.
static void FM_FN(gemm_with)(const FM_UKR_T *u, const FM_UKR_T *tail_u, ptrdiff_t m, ptrdiff_t n,
                             ptrdiff_t n_tail, ptrdiff_t k, FM_REAL alpha,
                             const FM_REAL *A, ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows,
                             const int64_t *a_cols, const FM_REAL *B, ptrdiff_t rsb, ptrdiff_t csb,
                             FM_REAL beta, FM_REAL *C, ptrdiff_t ldc, FM_REAL *work, int nthreads)
{
    FM_REAL *aligned = (FM_REAL *)fm_align_up(work);
    const size_t per_thread = FM_FN(thread_workspace)(m, n, k);
    const fm_grid grid = fm_thread_grid(m, n, k, nthreads, u->mr, u->nr, FM_GEMM_PARALLEL_MIN_MNK, 0);
    if (grid.tm * grid.tn == 1) {
        FM_FN(gemm_part)(u, tail_u, grid, 0, m, n, n_tail, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb,
                         beta, C, ldc, aligned);
        return;
    }
    // Each thread computes whole tiles of C, so no two threads write the same element and no sum
    // over k is split. A tile whose thread the pool could not start is taken by another.
    const FM_FN(gemm_job) job = {u, tail_u, grid, m, n, n_tail, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb,
                                 csb, beta, C, ldc, aligned, per_thread};
    fm_team_run(grid.tm * grid.tn, FM_FN(gemm_task), (void *)&job);
}

// fm_?gemm_at_level: fm_?gemm with the micro-kernels of the given level (contract in fm_gemm.h), split
//   between them by fm_?kernels.
int FM_FN(gemm_at_level)(const fm_gemm_level *level, ptrdiff_t m, ptrdiff_t n, ptrdiff_t k,
                         FM_REAL alpha, const FM_REAL *A, ptrdiff_t rsa, ptrdiff_t csa,
                         const int64_t *a_rows, const int64_t *a_cols, const FM_REAL *B,
                         ptrdiff_t rsb, ptrdiff_t csb, FM_REAL beta, FM_REAL *C, ptrdiff_t ldc,
                         FM_REAL *work, int nthreads)
{
    if (m < 0 || n < 0 || k < 0 || nthreads < 1 || (a_rows && a_cols)) return FM_EINVAL;
    if (m == 0 || n == 0) return FM_OK;
    const FM_UKR_T *u, *tail;
    const ptrdiff_t n_main = FM_FN(kernels)(level, n, csa, a_cols, &u, &tail);
    FM_FN(gemm_with)(u, tail, m, n_main, n - n_main, k, alpha, A, rsa, csa, a_rows, a_cols, B, rsb, csb, beta, C,
                     ldc, work, nthreads);
    return FM_OK;
}

// fm_?gemm: see fm_gemm.h.
int FM_FN(gemm)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, FM_REAL alpha, const FM_REAL *A, ptrdiff_t rsa,
                ptrdiff_t csa, const int64_t *a_rows, const int64_t *a_cols, const FM_REAL *B, ptrdiff_t rsb,
                ptrdiff_t csb, FM_REAL beta, FM_REAL *C, ptrdiff_t ldc, FM_REAL *work, int nthreads)
{
    return FM_FN(gemm_at_level)(fm_gemm_level_current(), m, n, k, alpha, A, rsa, csa, a_rows, a_cols, B,
                                rsb, csb, beta, C, ldc, work, nthreads);
}

// fm_?gemm_team: see fm_gemm.h.
int FM_FN(gemm_team)(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, FM_REAL alpha, const FM_REAL *A,
                     ptrdiff_t rsa, ptrdiff_t csa, const int64_t *a_rows, const int64_t *a_cols,
                     const FM_REAL *B, ptrdiff_t rsb, ptrdiff_t csb, FM_REAL beta, FM_REAL *C,
                     ptrdiff_t ldc, FM_REAL *work, int whole_rows, int id, int count, fm_tile *tile)
{
    *tile = (fm_tile){0, 0, 0, 0};
    if (m < 0 || n < 0 || k < 0 || count < 1 || id < 0 || id >= count || (a_rows && a_cols))
        return FM_EINVAL;
    if (m == 0 || n == 0) return FM_OK;
    const FM_UKR_T *u, *tail;
    const ptrdiff_t n_main = FM_FN(kernels)(fm_gemm_level_current(), n, csa, a_cols, &u, &tail);
    const fm_grid grid = fm_thread_grid(m, n_main, k, count, u->mr, u->nr, FM_GEMM_TEAM_MIN_MNK, whole_rows);
    *tile = FM_FN(gemm_part)(u, tail, grid, id, m, n_main, n - n_main, k, alpha, A, rsa, csa, a_rows, a_cols, B,
                             rsb, csb, beta, C, ldc, (FM_REAL *)fm_align_up(work));
    return FM_OK;
}

#undef FM_FN
#undef FM_UKR_T
#undef FM_REAL
#undef FM_X
#undef FM_MC
#undef FM_KC
#undef FM_NC
