// fm_microkernel_baseline.c: the 6 x 8 (float) and 6 x 4 (double) micro-kernels, and the narrow 12 x 4
// and 12 x 2 ones, with 16-byte vectors: SSE2, which every x86-64 CPU has, or NEON on arm64.
// Without masked loads and stores, the partial vector at the right edge of a tile goes lane by lane.
#include "fm_gemm.h"

#define FM_REAL float
#define FM_VL 4
#define FM_UKR fm_sukr_baseline
#include "fm_microkernel_impl.h"

#define FM_REAL double
#define FM_VL 2
#define FM_UKR fm_dukr_baseline
#include "fm_microkernel_impl.h"
