// fm_microkernel_avx2.c: the 6 x 16 (float) and 6 x 8 (double) micro-kernels for CPUs with AVX2 and FMA.
// Only this file is compiled for AVX2; fm_gemm.c calls it only after checking the CPU (fm_microkernel.c).
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#include "fm_gemm.h"

#define FM_REAL float
#define FM_VL 8
#define FM_MR 6
#define FM_NV 2
#define FM_UKR fm_sukr_avx2
#include "fm_microkernel_impl.h"

#define FM_REAL double
#define FM_VL 4
#define FM_MR 6
#define FM_NV 2
#define FM_UKR fm_dukr_avx2
#include "fm_microkernel_impl.h"
#endif
