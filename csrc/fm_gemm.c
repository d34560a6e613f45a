// fm_gemm.c: the blocked GEMM, organised as in BLIS (Van Zee and van de Geijn, TOMS 2015).
//
//   fm_?gemm                     split C into thread tiles, one tile per thread (fm_team.c)
//     fm_?gemm_tile              loop over n by NC, k by KC (pack B), m by MC
//       fm_?macro_kernel         pack A (if it pays), loop over NR-wide and MR-tall micro-panels
//         micro-kernel           one MR x NR tile of C, in registers (fm_microkernel*.c)
//
// Packing is in fm_pack.c; the micro-kernels and the run-time choice of instruction set in
// fm_microkernel*.c. The driver is written once, in fm_gemm_impl.h, and included here for float and
// double.
#include <stdint.h>

#include "fm_gemm.h"
#include "fm_team.h"

#define FM_CAT_(a, b) a##b
#define FM_CAT(a, b) FM_CAT_(a, b)

// When a product is split between threads (FM_GEMM_PARALLEL_MIN_MNK for fm_?gemm called on its own,
// FM_GEMM_TEAM_MIN_MNK in a team: training runs one team per mini-batch, from fastmlp/_kernels.pyx, and
// calls fm_?gemm_team) and when its operands are packed (FM_GEMM_PACK_*, FM_GEMM_B_IN_PLACE_MAX_LD):
// fm_tuning.h.

// fm_balanced_block: the block size that cuts n into ceil(n / max_block) nearly equal blocks, rounded
//   up to a multiple of unit (max_block must be a multiple of unit). n >= 1.
static ptrdiff_t fm_balanced_block(ptrdiff_t n, ptrdiff_t max_block, ptrdiff_t unit)
{
    const ptrdiff_t blocks = (n + max_block - 1) / max_block;
    const ptrdiff_t size = (n + blocks - 1) / blocks;
    return (size + unit - 1) / unit * unit;
}

// fm_rows_share_l1_sets: whether two of mr rows that are row_bytes apart land on the same L1 cache
//   sets (FM_L1_WAY_BYTES apart, to within FM_CACHE_LINE_BYTES). Read in place, such rows evict each
//   other and the micro-panel of B that should stay in L1, so they are worth packing.
static int fm_rows_share_l1_sets(ptrdiff_t row_bytes, int mr)
{
    for (ptrdiff_t d = 1; d < mr; d++) {
        const ptrdiff_t offset = (d * row_bytes) % FM_L1_WAY_BYTES;
        if (offset < FM_CACHE_LINE_BYTES || offset > FM_L1_WAY_BYTES - FM_CACHE_LINE_BYTES) return 1;
    }
    return 0;
}

// fm_index_from: the part of an index of rows or columns (NULL: none) from entry start on.
static const int64_t *fm_index_from(const int64_t *index, ptrdiff_t start)
{
    return index ? index + start : NULL;
}

// fm_align_up: the first address at or after p that is a multiple of FM_ALIGN.
static void *fm_align_up(void *p)
{
    return (void *)(((uintptr_t)p + FM_ALIGN - 1) / FM_ALIGN * FM_ALIGN);
}

// How a macro-kernel reads its block of A (fm_gemm_impl.h).
enum { A_IN_PLACE, A_PACK, A_PACKED };

// The thread tiles: C is cut into tm row groups times tn column groups.
typedef struct { int tm, tn; } fm_grid;
typedef struct { ptrdiff_t start, size; } fm_range;

// fm_thread_grid: how to cut an m x n x k product among at most nthreads threads. One tile when the
//   product has fewer than min_mnk multiply-adds; otherwise, of the splits tm * tn with whole
//   micro-tiles in every part (and tn == 1 if whole_rows is set), the one that packs the least data
//   twice: each of the tn column groups packs its rows of A (m*k values) and each of the tm row groups
//   its columns of B (k*n values).
static fm_grid fm_thread_grid(ptrdiff_t m, ptrdiff_t n, ptrdiff_t k, int nthreads, int mr, int nr,
                              double min_mnk, int whole_rows)
{
    fm_grid best = {1, 1};
    if ((double)m * (double)n * (double)k < min_mnk) return best;
    const ptrdiff_t m_units = (m + mr - 1) / mr, n_units = (n + nr - 1) / nr;
    for (int threads = nthreads; threads > 1; threads--) {
        double best_cost = -1;
        for (int tn = 1; tn <= threads; tn++) {
            const int tm = threads / tn;
            if (tm * tn != threads || tm > m_units || tn > n_units || (whole_rows && tn > 1)) continue;
            const double cost = (double)m * tn + (double)n * tm;
            if (best_cost < 0 || cost < best_cost) best = (fm_grid){tm, tn}, best_cost = cost;
        }
        if (best_cost >= 0) return best;
    }
    return best;
}

// fm_grid_part: part `part` of `parts` nearly equal parts of 0 .. n-1, cut at multiples of unit.
static fm_range fm_grid_part(ptrdiff_t n, ptrdiff_t unit, int parts, int part)
{
    const ptrdiff_t units = (n + unit - 1) / unit;
    ptrdiff_t start = units * part / parts * unit, end = units * (part + 1) / parts * unit;
    if (start > n) start = n;
    if (end > n) end = n;
    return (fm_range){start, end - start};
}

#define FM_REAL float
#define FM_X s
#define FM_MC FM_SGEMM_MC
#define FM_KC FM_SGEMM_KC
#define FM_NC FM_SGEMM_NC
#include "fm_gemm_impl.h"

#define FM_REAL double
#define FM_X d
#define FM_MC FM_DGEMM_MC
#define FM_KC FM_DGEMM_KC
#define FM_NC FM_DGEMM_NC
#include "fm_gemm_impl.h"

// fm_gemm_isa: see fm_gemm.h.
const char *fm_gemm_isa(void) { return fm_gemm_level_current()->name; }
