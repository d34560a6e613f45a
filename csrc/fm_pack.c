// fm_pack.c: packing of A and B into micro-panels for the GEMM in fm_gemm.c (see fm_pack_impl.h).
#include "fm_gemm.h"

#define FM_REAL float
#define FM_PACK fm_spack
#include "fm_pack_impl.h"

#define FM_REAL double
#define FM_PACK fm_dpack
#include "fm_pack_impl.h"
