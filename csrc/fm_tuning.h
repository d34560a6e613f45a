// fm_tuning.h: the tuning constants of the C kernels, each with why it has its value. A name in quotes is
// the section of benchmarks/RESULTS.md holding the measurement that decided it. Only KC changes results
// (it moves where partial sums are rounded); every other constant here changes only the speed.
// Included by fm_common.h (for the GEMM) and fm_team.h (for the team pool), and read by fastmlp/_kernels.pyx
// (cdef extern from "fm_tuning.h"), which takes its thresholds from here rather than repeating them.
#ifndef FM_TUNING_H
#define FM_TUNING_H

// GEMM block sizes (BLIS names), for AMD Zen 4 and 5 (48 KiB L1d and 1 MiB L2 per core): an MC x KC block
// of A (460 KB) and a KC x NR micro-panel of B (100 KB) stay in L2, a KC x NC panel of B (4.9 MB float,
// 9.8 MB double) in L3. MC must be a multiple of every micro-kernel's MR and NC of every NR.
// MC = 144 floats: 12 tiles of 12 rows, 460 KB of A with KC = 800.
#define FM_SGEMM_MC 144
// KC = 800: a 784-pixel row of a batch read in place comes from memory in one pass ("Twelve-row tiles").
#define FM_SGEMM_KC 800
// NC = 1536: with KC = 800, a KC x NC panel of B (4.9 MB float) stays in L3 ("Twelve-row tiles").
#define FM_SGEMM_NC 1536
// MC = 72 doubles: the same 460 KB of A.
#define FM_DGEMM_MC 72
// KC = 800 doubles, as for float.
#define FM_DGEMM_KC 800
// NC = 1536 doubles, as for float (9.8 MB, in L3).
#define FM_DGEMM_NC 1536

// The most rows of any micro-tile (avx512's, 12), to size workspaces.
#define FM_MR_MAX 12
// The most columns of any micro-tile (avx512's float kernel, 32), to size workspaces.
#define FM_NR_MAX 32

// How far ahead (bytes) the micro-kernels request the lines of a batch's rows ("Rows requested ahead").
#define FM_AHEAD 1024
// The same for a weight gradient's tiles, A_COLS with rsa == 1 ("Weight-gradient rows requested ahead").
#define FM_COLS_AHEAD 256

// Columns packed per step: a cache line of floats, so every line of X read is used up at once.
#define FM_PACK_KB 16

// A call that starts its own team (fm_?gemm alone; inference in fastmlp/_kernels.pyx) splits from 2M
// multiply-adds (50-100 µs of one core): below, waking a thread risks more than it saves.
#define FM_GEMM_PARALLEL_MIN_MNK 2000000.0
// A running team splits from 30k multiply-adds, about 1 µs of one core ("Teams from fastmlp's own pool").
#define FM_GEMM_TEAM_MIN_MNK 30000.0
// A is packed for tiles wider than this (a micro-panel of A then serves several of B), unless read in place.
#define FM_GEMM_PACK_A_MIN_N 32
// B is read in place when A has at most this many micro-panels: packing would cost a pass over B.
#define FM_GEMM_PACK_B_MIN_PANELS 4
// ... or when B's row stride is at most this many micro-panels: its rows span few cache lines.
#define FM_GEMM_B_IN_PLACE_MAX_LD 2
// ... or when A has at most this many, B's rows do not share L1 sets and a micro-panel's rows span two
// cache lines or more ("B read in place"): on AVX-512 a 1024-row float block (86 micro-panels) was
// 3.5% slower in place, 512 double rows (43) 1.5-3% faster; AVX2's one-line rows were not faster.
#define FM_GEMM_B_IN_PLACE_MAX_PANELS 48
// An L1 way (x86 of the last decade): rows a multiple of this apart share L1 sets, so they are packed.
#define FM_L1_WAY_BYTES 4096
// A cache line: the margin of that test, and what each request ahead of the micro-kernels fetches.
#define FM_CACHE_LINE_BYTES 64

// Training's team splits a batch by rows when all the weights fit in this (every x86-64 core's L2 holds
// 256 KiB): each thread then reads them all, and the team meets once per batch, not per layer
// ("Splitting a batch by rows or by tiles"). Network.split_rows in fastmlp/_kernels.pyx.
#define FM_SPLIT_ROWS_MAX_WEIGHT_BYTES 262144
// Inference runs a batch through all the layers a block of rows at a time, so that a block's hidden
// activations are still in cache when the next layer's product reads them (fastmlp/_predict.pxi):
// at least this many rows, so that packing the weights, once a block, costs little ...
#define FM_PREDICT_BLOCK_ROWS 256
// ... and more while the widest hidden layer's activations take at most this many bytes: each block
// packs every weight matrix again ("Inference blocks").
#define FM_PREDICT_BLOCK_BYTES 409600

// A waiting thread of the team pool first spins this many pauses (a few µs): most waits are shorter.
#define FM_TEAM_PAUSES 1000
// ... then yields its core for up to 200 µs: many gaps between batches, a fraction of a time slice.
#define FM_TEAM_SPIN_NS 200000

// The adaptive choice between a team and one thread (fm_team_choice in fm_team.h):
// an option's time is the median of its last 8 tasks, so that an interrupted one does not count;
#define FM_TEAM_WINDOW 8
// the other option is tried again after 20 ms (about a C1 epoch), so that the choice follows the load ...
#define FM_TEAM_TRY_EVERY_NS 20000000
// ... and 200 tasks, so that long tasks spend little time on the slower option ("Adaptive teams") ...
#define FM_TEAM_TRY_EVERY_TASKS 200
// ... or after 5 s however few tasks, so that a choice made in a busy moment does not last minutes
// of long tasks (200 predictions of 10,000 rows take 2-4 s; C4's batches, 4 s);
#define FM_TEAM_TRY_AFTER_NS 5000000000LL
// a try lasts at least 1 ms ...
#define FM_TEAM_TRY_NS 1000000
// ... and 4 tasks, the first of which is not counted (it wakes the workers).
#define FM_TEAM_TRY_TASKS 4

// Sparse input (fm_sparse.h): a nonzero's dense row of W (forward) or G (gradient) is requested this
// many nonzeros before its turn, a few hundred ns ahead at a row of 64 floats a nonzero.
#define FM_SPARSE_AHEAD_NONZEROS 8

#endif
