// fm_team.h: a team of threads that trains one mini-batch together, from a small pool of worker
// threads that live as long as the process.
//
// fm_team_run(count, task, arg) calls task(arg, id, count) on `count` threads at once, the caller
// being id 0, and returns when every one has returned. The threads of a team meet with
// fm_team_barrier(count). Between teams the workers spin for a short while (the next mini-batch is
// usually a few microseconds away), then sleep in the kernel, so an idle pool costs no CPU time.
//
// The pool starts its threads with the function given to fm_team_set_starter (fastmlp/_kernels.pyx
// gives CPython's PyThread_start_new_thread, which needs no symbol of a newer glibc; the C tests give
// pthread_create). Without one, or when a thread cannot be started, or while another caller's team
// holds the pool, a task runs with fewer threads, down to the caller alone: tasks must compute the
// same result for any count, as all of fastmlp's do.
#ifndef FM_TEAM_H
#define FM_TEAM_H

typedef void (*fm_team_task)(void *arg, int id, int count);

// fm_thread_starter: start a thread that runs body(arg); returns 0 on success.
typedef int (*fm_thread_starter)(void (*body)(void *), void *arg);

void fm_team_set_starter(fm_thread_starter start);

// fm_team_run: see above. count >= 1 (at most FM_TEAM_MAX threads are used). Returns the number of
//   threads that ran the task.
#define FM_TEAM_MAX 64
int fm_team_run(int count, fm_team_task task, void *arg);

// fm_team_runs: how many tasks have run on more than one thread in this process (a fork's child
//   counts on from its parent's count); fm_team_workers: how many worker threads the pool has
//   started in this process. For tests and reports.
unsigned fm_team_runs(void);
int fm_team_workers(void);

// fm_team_barrier: every thread of the running team (of `count`, as its task was given) waits here
//   until all have arrived, and then sees what the others wrote before. Does nothing when count == 1.
void fm_team_barrier(int count);

#endif
