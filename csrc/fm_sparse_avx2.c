// fm_sparse_avx2.c: the sparse products for CPUs with AVX2 and FMA (8 floats, 4 doubles a vector).
// Only this file is compiled for that level; fm_sparse.c calls it only after checking the CPU.
#include "fm_sparse.h"
#include "fm_isa.h"
#if FM_HAS_AVX2
#pragma GCC target("avx2,fma")
#define FM_LEVEL avx2
#include "fm_sparse_impl.h"
#endif
