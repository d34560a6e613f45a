// fm_microkernel_avx2.c: the 6 x 16 (float) and 6 x 8 (double) micro-kernels, and the narrow 12 x 8 and
// 12 x 4 ones, for CPUs with AVX2 and FMA.
// Only this file is compiled for AVX2; fm_gemm.c calls it only after checking the CPU (fm_microkernel.c).
#include "fm_isa.h"
#if FM_HAS_AVX2
#pragma GCC target("avx2,fma")
#include <immintrin.h>

#include "fm_gemm.h"

// Masked loads and stores (vmaskmov) for the partial vector at the right edge of a tile: a lane is
// used when its mask lane is negative, here when its index is below lanes.
#define FM_REAL float
#define FM_VL 8
#define FM_UKR fm_sukr_avx2
#define FM_MASK_T __m256i
#define FM_MASK(lanes) _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(lanes)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm256_maskload_ps(p, mask))
#define FM_STORE_MASKED(p, mask, v) _mm256_maskstore_ps(p, mask, (__m256)(v))
#include "fm_microkernel_impl.h"

#define FM_REAL double
#define FM_VL 4
#define FM_UKR fm_dukr_avx2
#define FM_MASK_T __m256i
#define FM_MASK(lanes) _mm256_cmpgt_epi64(_mm256_set1_epi64x(lanes), _mm256_setr_epi64x(0, 1, 2, 3))
#define FM_LOAD_MASKED(p, mask) ((FM_VEC)_mm256_maskload_pd(p, mask))
#define FM_STORE_MASKED(p, mask, v) _mm256_maskstore_pd(p, mask, (__m256d)(v))
#include "fm_microkernel_impl.h"
#endif
