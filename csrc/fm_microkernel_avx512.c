// fm_microkernel_avx512.c: the 12 x 32 (float) and 12 x 16 (double) micro-kernels, and the narrow 12 x 16
// and 12 x 8 ones, for CPUs with AVX-512F (32 vector registers: 12 rows, see fm_microkernel_impl.h).
// Only this file is compiled for AVX-512; fm_gemm.c calls it only after checking the CPU (fm_microkernel.c).
#include "fm_isa.h"
#if FM_HAS_AVX512
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>

#include "fm_gemm.h"

// Masked loads and stores for the partial vector at the right edge of a tile: the first lanes lanes.
// With AVX-512 a masked load or store costs about what a plain one does, so a tile of fewer than 12 rows
// masks its last vector, whole or partial (FM_CHEAP_MASKS): one copy of each such tile instead of two.
#define FM_REAL float
#define FM_VL 16
#define FM_UKR fm_sukr_avx512
#define FM_WIDE_MR 12
#define FM_CHEAP_MASKS
#define FM_MASK_T __mmask16
#define FM_MASK(lanes) ((__mmask16)((1u << (lanes)) - 1))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm512_maskz_loadu_ps(mask, p))
#define FM_STORE_MASKED(p, mask, v) _mm512_mask_storeu_ps(p, mask, (__m512)(v))
#include "fm_microkernel_impl.h"

#define FM_REAL double
#define FM_VL 8
#define FM_UKR fm_dukr_avx512
#define FM_WIDE_MR 12
#define FM_CHEAP_MASKS
#define FM_MASK_T __mmask8
#define FM_MASK(lanes) ((__mmask8)((1u << (lanes)) - 1))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm512_maskz_loadu_pd(mask, p))
#define FM_STORE_MASKED(p, mask, v) _mm512_mask_storeu_pd(p, mask, (__m512d)(v))
#include "fm_microkernel_impl.h"
#endif
