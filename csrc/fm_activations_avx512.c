// fm_activations_avx512.c: the elementwise kernels for CPUs with AVX-512F (16 floats, 8 doubles a vector):
// the activations and, through fm_activations_impl.h, the update kernels (fm_update.h).
// Only this file is compiled for AVX-512; fm_activations.c calls it only after checking the CPU.
#include "fm_activations.h"
#include "fm_isa.h"
#if FM_HAS_AVX512
#pragma GCC target("avx512f,avx2,fma")
#include <immintrin.h>   // the masked loads and stores of partial vectors (fm_vector_impl.h)
#define FM_LEVEL avx512
#define FM_VBYTES 64
#define FM_DOUBLE 0
#include "fm_activations_impl.h"
#define FM_DOUBLE 1
#include "fm_activations_impl.h"
#endif
