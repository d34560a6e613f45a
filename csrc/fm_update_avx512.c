// fm_update_avx512.c: the update kernels for CPUs with AVX-512F (16 floats, 8 doubles a vector).
// Only this file is compiled for avx512; fm_update.c calls it only after checking the CPU.
#include <stdint.h>

#include "fm_update.h"
#if defined(__x86_64__) || defined(__i386__)
#pragma GCC target("avx512f,avx2,fma")
#define FM_LEVEL avx512
#define FM_VBYTES 64
#define FM_DOUBLE 0
#include "fm_update_impl.h"
#define FM_DOUBLE 1
#include "fm_update_impl.h"
#endif
