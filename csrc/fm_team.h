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

#include "fm_tuning.h"   // FM_TEAM_WINDOW and the other constants of fm_team_choice

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

// fm_team_choice: a run of similar tasks (the mini-batches of one network) learning whether they go
//   faster as a team or alone. On a quiet machine a team is faster once the work is big enough (the
//   caller's count says when); on a busy one, a team member that has lost its core makes the others
//   wait at every barrier, and the same tasks run faster alone. Each option's time per unit of work
//   is the median of its last FM_TEAM_WINDOW tasks (so that a task slowed down by an interrupt does
//   not count); the faster one runs, and the other is tried again after FM_TEAM_TRY_EVERY_NS and
//   FM_TEAM_TRY_EVERY_TASKS tasks (or after FM_TEAM_TRY_AFTER_NS, however few tasks), for
//   FM_TEAM_TRY_NS and at least FM_TEAM_TRY_TASKS tasks, so that
//   the choice follows the machine's load at a cost of a few percent, short tasks or long (the
//   constants are in fm_tuning.h; the first task of a try is not counted: it wakes the workers).
//   Zero-initialise it.
typedef struct {
    double times[2][FM_TEAM_WINDOW];   // the last times per unit of [alone, as a team], a ring each
    int filled[2], next[2];
    long long try_start_ns;            // when the last try started
    int trying, try_team;              // a try is running, of the team or alone
    int try_tasks;                     // tasks of the try so far
    int tasks_since_try;               // tasks since the last try started
} fm_team_choice;

// fm_team_run_adaptive: fm_team_run with count threads or alone, as fm_team_choose decides, timed and
//   recorded (fm_team_record) per unit of the task's work (units > 0: a mini-batch's rows). Returns the
//   number of threads that ran the task. count <= 1: fm_team_run(1, ...), not timed.
int fm_team_run_adaptive(fm_team_choice *choice, int count, double units, fm_team_task task, void *arg);

// fm_team_choose: count or 1 for a task starting at now_ns (a monotonic clock): the team is tried
//   first, then running alone; then the option with the lower estimate runs, apart from the tries.
int fm_team_choose(fm_team_choice *choice, int count, long long now_ns);

// fm_team_record: a task's time per unit on `threads` threads, added to that option's last times
//   (a try starts them afresh) unless it was the first task of a try.
void fm_team_record(fm_team_choice *choice, int threads, double seconds_per_unit);

// fm_team_estimate: the median of an option's last times (team != 0: of the team), 0 if none.
double fm_team_estimate(const fm_team_choice *choice, int team);

// fm_team_barrier: every thread of the running team (of `count`, as its task was given) waits here
//   until all have arrived, and then sees what the others wrote before. Does nothing when count == 1.
void fm_team_barrier(int count);

#endif
