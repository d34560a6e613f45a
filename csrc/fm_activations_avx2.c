// fm_activations_avx2.c: the elementwise kernels for CPUs with AVX2 and FMA (8 floats, 4 doubles a vector):
// the activations and, through fm_activations_impl.h, the update kernels (fm_update.h).
// Only this file is compiled for AVX2; fm_activations.c calls it only after checking the CPU.
#include "fm_activations.h"
#include "fm_isa.h"
#if FM_HAS_AVX2
#pragma GCC target("avx2,fma")
#include <immintrin.h>   // the masked loads and stores of partial vectors (fm_vector_impl.h)
#define FM_LEVEL avx2
#define FM_VBYTES 32
#define FM_DOUBLE 0
#include "fm_activations_impl.h"
#define FM_DOUBLE 1
#include "fm_activations_impl.h"
#endif
