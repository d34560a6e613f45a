// fm_common.h: status codes and alignment shared by the C kernels, and (through fm_tuning.h) the GEMM's
// block sizes.
// The C in csrc/ knows only numbers and pointers: it never includes Python.h, never prints, never exits.
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stddef.h>

#include "fm_tuning.h"

#define FM_OK 0
#define FM_EINVAL 1   // a dimension or stride is negative or too small
#define FM_ENOMEM 2   // a workspace is too small

// Workspaces are aligned to a cache line inside the caller's buffer.
#define FM_ALIGN FM_CACHE_LINE_BYTES

#endif
