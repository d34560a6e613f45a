// fm_common.h: status codes and block sizes shared by the C kernels.
// The C in csrc/ knows only numbers and pointers: it never includes Python.h, never prints, never exits.
#ifndef FM_COMMON_H
#define FM_COMMON_H

#include <stddef.h>

#define FM_OK 0
#define FM_EINVAL 1   // a dimension or stride is negative or too small
#define FM_ENOMEM 2   // a workspace is too small

#endif
