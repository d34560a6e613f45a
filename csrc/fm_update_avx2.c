// fm_update_avx2.c: the update kernels for CPUs with AVX2 and FMA (8 floats, 4 doubles a vector).
// Only this file is compiled for avx2; fm_update.c calls it only after checking the CPU.
#include <stdint.h>

#include "fm_update.h"
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx2,fma")
#define FM_LEVEL avx2
#define FM_VBYTES 32
#define FM_DOUBLE 0
#include "fm_update_impl.h"
#define FM_DOUBLE 1
#include "fm_update_impl.h"
#endif
