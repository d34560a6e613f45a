// fm_common.h: status codes and block sizes shared by the C kernels.
// The C in csrc/ knows only numbers and pointers: it never includes Python.h, never prints, never exits.
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stddef.h>

#define FM_OK 0
#define FM_EINVAL 1   // a dimension or stride is negative or too small
#define FM_ENOMEM 2   // a workspace is too small

// GEMM block sizes (BLIS names), chosen for AMD Zen 4 and 5 (48 KiB L1d and 1 MiB L2 per core):
//   an MC x KC block of A (460 KB) and a KC x NR micro-panel of B (100 KB) stay in L2, a KC x NC panel
//   of B (4.9 MB float, 9.8 MB double) in L3.
// KC = 800 takes a layer of up to 800 inputs (784: a 28 x 28 image) in one block, so that a mini-batch's
// rows, read in place in the data set, are each read from memory in one pass rather than in pieces
// (benchmarks/RESULTS.md, "Twelve-row tiles"). MC must be a multiple of every micro-kernel's MR and NC
// of every NR (see fm_microkernel*.c).
#define FM_SGEMM_MC 144
#define FM_SGEMM_KC 800
#define FM_SGEMM_NC 1536
#define FM_DGEMM_MC 72
#define FM_DGEMM_KC 800
#define FM_DGEMM_NC 1536

// The largest micro-tile of any instruction-set level, for sizing workspaces.
#define FM_MR_MAX 12
#define FM_NR_MAX 32

// Workspaces are aligned to a cache line inside the caller's buffer.
#define FM_ALIGN 64

#endif
