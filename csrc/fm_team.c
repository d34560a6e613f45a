// fm_team.c: the pool of worker threads behind fm_team_run (contract in fm_team.h).
//
// All shared state is a few atomic counters. A generation counter tells the workers that a task is
// waiting (task_gen) or that a barrier is complete (barrier_gen); whoever waits on one spins a
// little, yields its core for up to FM_TEAM_SPIN_NS (fm_tuning.h), and then sleeps on it: with a futex
// on Linux, elsewhere (or built with -DFM_TEAM_NO_FUTEX, as the C tests also do) on a POSIX condition
// variable. Every started worker acknowledges every task through `pending`, the ones not in the
// team at once, so the description of a task (task, arg, count) never changes while a worker may
// still read it. A fork's child starts workers of its own (unless the fork happened while another
// thread's team held the pool: then the child's tasks all run on one thread).
#include <limits.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__) && !defined(FM_TEAM_NO_FUTEX)
#define FM_TEAM_FUTEX 1
#include <linux/futex.h>
#include <sys/syscall.h>
#else
#include <pthread.h>
static pthread_mutex_t fm_sleep_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t fm_sleep_cond = PTHREAD_COND_INITIALIZER;
#endif

#include "fm_team.h"

static struct {
    // The counters that waiting threads read each sit on a cache line of their own.
    _Alignas(FM_CACHE_LINE_BYTES) atomic_uint task_gen;      // + 1 for each task handed to the workers
    atomic_uint pending;                 // workers that have not yet finished the current task
    atomic_uint sleepers;                // threads asleep (or about to be) on one of the counters
    _Alignas(FM_CACHE_LINE_BYTES) atomic_uint barrier_gen;   // + 1 each time a whole team has reached a barrier
    atomic_uint arrived;                 // threads at the current barrier
    _Alignas(FM_CACHE_LINE_BYTES) atomic_flag busy;          // a team is running (one at a time)
    fm_team_task task;                   // the current task, set while busy and no worker runs
    void *arg;
    int count;
    atomic_int workers;                  // started, ids 1 .. workers
    atomic_int pid;                      // of the process that started them
    unsigned start_gen[FM_TEAM_MAX];     // task_gen when worker id was started
    fm_thread_starter start;
} pool = {.busy = ATOMIC_FLAG_INIT};

static void fm_pause(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static int64_t fm_now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

// fm_sleep_while: sleep until *word != value (or a spurious wake-up: callers loop).
static void fm_sleep_while(atomic_uint *word, unsigned value)
{
    atomic_fetch_add(&pool.sleepers, 1);   // seq_cst: a waker that changes *word after this sees it
#ifdef FM_TEAM_FUTEX
    if (atomic_load(word) == value) syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, value, NULL, NULL, 0);
#else
    pthread_mutex_lock(&fm_sleep_lock);
    if (atomic_load(word) == value) pthread_cond_wait(&fm_sleep_cond, &fm_sleep_lock);
    pthread_mutex_unlock(&fm_sleep_lock);
#endif
    atomic_fetch_sub(&pool.sleepers, 1);
}

// fm_wake: after changing *word (with a seq_cst operation), wake the threads asleep on it.
static void fm_wake(atomic_uint *word)
{
    if (atomic_load(&pool.sleepers) == 0) return;
#ifdef FM_TEAM_FUTEX
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
#else
    (void)word;   // one condition variable for all the counters: sleepers re-check theirs
    pthread_mutex_lock(&fm_sleep_lock);
    pthread_cond_broadcast(&fm_sleep_cond);
    pthread_mutex_unlock(&fm_sleep_lock);
#endif
}

// fm_wait_while: return once *word != value; what was written before the change is then visible.
static void fm_wait_while(atomic_uint *word, unsigned value)
{
    int64_t start = 0;
    for (unsigned spins = 1; atomic_load_explicit(word, memory_order_acquire) == value; spins++) {
        if (spins < FM_TEAM_PAUSES) {
            fm_pause();
        } else if (start == 0) {
            start = fm_now_ns();
        } else if (fm_now_ns() - start < FM_TEAM_SPIN_NS) {
            sched_yield();   // let a thread of the team that lost its core run here
        } else {
            fm_sleep_while(word, value);
        }
    }
}

static void fm_worker(void *arg)
{
    const int id = (int)(intptr_t)arg;
    unsigned seen = pool.start_gen[id];
    for (;;) {
        fm_wait_while(&pool.task_gen, seen);
        seen = atomic_load_explicit(&pool.task_gen, memory_order_acquire);
        if (id < pool.count) pool.task(pool.arg, id, pool.count);
        if (atomic_fetch_sub(&pool.pending, 1) == 1) fm_wake(&pool.pending);
    }
}

void fm_team_set_starter(fm_thread_starter start) { pool.start = start; }

// fm_hire: start workers until there are `wanted` (called while busy). Returns how many there are.
static int fm_hire(int wanted)
{
    if (pool.pid != getpid()) {   // a fork's child: its parent's workers do not exist here
        pool.workers = 0;
        pool.pid = getpid();
        atomic_store(&pool.arrived, 0);
    }
    while (pool.workers < wanted && pool.start != NULL) {
        const int id = pool.workers + 1;
        pool.start_gen[id] = atomic_load(&pool.task_gen);
        if (pool.start(fm_worker, (void *)(intptr_t)id) != 0) break;
        pool.workers = id;
    }
    return pool.workers;
}

int fm_team_run(int count, fm_team_task task, void *arg)
{
    if (count > FM_TEAM_MAX) count = FM_TEAM_MAX;
    if (count > 1 && !atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        const int workers = fm_hire(count - 1);
        if (workers + 1 < count) count = workers + 1;
        if (count > 1) {
            pool.task = task, pool.arg = arg, pool.count = count;
            atomic_store_explicit(&pool.pending, (unsigned)workers, memory_order_relaxed);
            atomic_fetch_add(&pool.task_gen, 1);   // seq_cst: publishes the task
            fm_wake(&pool.task_gen);
            task(arg, 0, count);
            for (unsigned left; (left = atomic_load_explicit(&pool.pending, memory_order_acquire)) != 0;)
                fm_wait_while(&pool.pending, left);
            atomic_flag_clear_explicit(&pool.busy, memory_order_release);
            return count;
        }
        atomic_flag_clear_explicit(&pool.busy, memory_order_release);
    }
    task(arg, 0, 1);
    return 1;
}

unsigned fm_team_runs(void) { return atomic_load(&pool.task_gen); }

int fm_team_workers(void) { return pool.pid == getpid() ? pool.workers : 0; }

void fm_team_barrier(int count)
{
    if (count <= 1) return;
    const unsigned gen = atomic_load_explicit(&pool.barrier_gen, memory_order_acquire);
    if (atomic_fetch_add_explicit(&pool.arrived, 1, memory_order_acq_rel) == (unsigned)count - 1) {
        atomic_store_explicit(&pool.arrived, 0, memory_order_relaxed);
        atomic_fetch_add(&pool.barrier_gen, 1);   // seq_cst: releases the others
        fm_wake(&pool.barrier_gen);
    } else {
        fm_wait_while(&pool.barrier_gen, gen);
    }
}

double fm_team_estimate(const fm_team_choice *choice, int team)
{
    const int n = choice->filled[team != 0];
    double sorted[FM_TEAM_WINDOW];
    for (int i = 0; i < n; i++) {   // insertion sort
        int j = i;
        for (; j > 0 && sorted[j - 1] > choice->times[team != 0][i]; j--) sorted[j] = sorted[j - 1];
        sorted[j] = choice->times[team != 0][i];
    }
    return n == 0 ? 0 : sorted[(n - 1) / 2];
}

// fm_team_try: start a try of the team (or of running alone) at now_ns; returns its thread count.
static int fm_team_try(fm_team_choice *choice, int team, int count, long long now_ns)
{
    choice->trying = 1, choice->try_team = team, choice->try_tasks = 0, choice->try_start_ns = now_ns;
    choice->tasks_since_try = 0;
    choice->filled[team] = choice->next[team] = 0;
    return team ? count : 1;
}

int fm_team_choose(fm_team_choice *choice, int count, long long now_ns)
{
    if (count <= 1) return 1;
    choice->tasks_since_try++;
    if (choice->trying) {
        if (choice->try_tasks < FM_TEAM_TRY_TASKS || now_ns - choice->try_start_ns < FM_TEAM_TRY_NS)
            return choice->try_team ? count : 1;
        choice->trying = 0;
    }
    if (choice->filled[1] == 0) return fm_team_try(choice, 1, count, now_ns);
    if (choice->filled[0] == 0) return fm_team_try(choice, 0, count, now_ns);
    const int team_faster = fm_team_estimate(choice, 1) <= fm_team_estimate(choice, 0);
    const long long since_try = now_ns - choice->try_start_ns;
    if ((since_try >= FM_TEAM_TRY_EVERY_NS && choice->tasks_since_try > FM_TEAM_TRY_EVERY_TASKS) ||
        since_try >= FM_TEAM_TRY_AFTER_NS)
        return fm_team_try(choice, !team_faster, count, now_ns);
    return team_faster ? count : 1;
}

void fm_team_record(fm_team_choice *choice, int threads, double seconds_per_unit)
{
    if (choice->trying && ++choice->try_tasks == 1) return;
    const int team = threads > 1;
    choice->times[team][choice->next[team]] = seconds_per_unit;
    choice->next[team] = (choice->next[team] + 1) % FM_TEAM_WINDOW;
    if (choice->filled[team] < FM_TEAM_WINDOW) choice->filled[team]++;
}

int fm_team_run_adaptive(fm_team_choice *choice, int count, double units, fm_team_task task, void *arg)
{
    if (count <= 1) return fm_team_run(1, task, arg);
    const int64_t start = fm_now_ns();
    const int threads = fm_team_run(fm_team_choose(choice, count, start), task, arg);
    fm_team_record(choice, threads, (double)(fm_now_ns() - start) * 1e-9 / units);
    return threads;
}
