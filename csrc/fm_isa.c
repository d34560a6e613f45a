// fm_isa.c: CPU detection and the FASTMLP_ISA rule (contracts in fm_isa.h).
#include <stdlib.h>
#include <string.h>

#include "fm_isa.h"

// Every level name any family uses, fastest first: the order in which a missing level falls back.
static const char *const all_levels[] = {"avx512", "avx2", "baseline", "reference"};
enum { n_all_levels = sizeof all_levels / sizeof all_levels[0] };

// Position of name in all_levels, or -1 if it is none of them (or NULL).
static int rank(const char *name)
{
    for (int r = 0; name != NULL && r < n_all_levels; r++)
        if (strcmp(name, all_levels[r]) == 0) return r;
    return -1;
}

// fm_cpu_runs: see fm_isa.h.
int fm_cpu_runs(const char *level)
{
    const int r = rank(level);
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    if (r == 0) return __builtin_cpu_supports("avx512f") != 0;
    if (r == 1) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
    if (r == 0 || r == 1) return 0;
#endif
    return 1;
}

// fm_isa_choose: see fm_isa.h. The start is the fastest level no faster than the one asked for.
int fm_isa_choose(const char *const *names, int count)
{
    const int wanted = rank(getenv("FASTMLP_ISA"));
    int start = 0;
    if (wanted >= 0)
        while (start < count - 1 && rank(names[start]) < wanted) start++;
    for (int i = start; i < count; i++)
        if (fm_cpu_runs(names[i])) return i;
    return count - 1;
}
