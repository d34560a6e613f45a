// fm_sparse_avx512.c: the sparse products for CPUs with AVX-512F (16 floats, 8 doubles a vector).
// Only this file is compiled for that level; fm_sparse.c calls it only after checking the CPU.
#include "fm_sparse.h"
#include "fm_isa.h"
#if FM_HAS_AVX512
#pragma GCC target("avx512f,avx2,fma")
#define FM_LEVEL avx512
#include "fm_sparse_impl.h"
#endif
