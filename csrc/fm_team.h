// fm_team.h: the few OpenMP calls of a team of threads that trains one mini-batch together
// (fastmlp/_kernels.pyx opens the parallel region). Without OpenMP a team is one thread and the
// barrier does nothing.
#ifndef FM_TEAM_H
#define FM_TEAM_H

#ifdef _OPENMP
#include <omp.h>
static inline int fm_team_id(void) { return omp_get_thread_num(); }
static inline int fm_team_size(void) { return omp_get_num_threads(); }
// Every thread of the team waits here until all have arrived (and sees what the others wrote before).
static inline void fm_team_barrier(void) { _Pragma("omp barrier") }
#else
static inline int fm_team_id(void) { return 0; }
static inline int fm_team_size(void) { return 1; }
static inline void fm_team_barrier(void) {}
#endif

#endif
