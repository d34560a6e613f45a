// fm_common.h: status codes and block sizes shared by the C kernels.
// The C in csrc/ knows only numbers and pointers: it never includes Python.h, never prints, never exits.
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stddef.h>

#define FM_OK 0
#define FM_EINVAL 1   // a dimension or stride is negative or too small
#define FM_ENOMEM 2   // a workspace is too small

// GEMM block sizes (BLIS names), chosen for AMD Zen (32 KiB L1d, 512 KiB L2 per core):
//   a KC x NR micro-panel of B stays in L1, an MC x KC block of A in L2, a KC x NC panel of B in L3.
// MC must be a multiple of every micro-kernel's MR and NC of every NR (see fm_microkernel*.c).
#define FM_SGEMM_MC 144
#define FM_SGEMM_KC 256
#define FM_SGEMM_NC 4096
#define FM_DGEMM_MC 72
#define FM_DGEMM_KC 256
#define FM_DGEMM_NC 4096

// The largest micro-tile of any instruction-set level, for sizing workspaces.
#define FM_MR_MAX 12
#define FM_NR_MAX 32

// Workspaces are aligned to a cache line inside the caller's buffer.
#define FM_ALIGN 64

#endif
