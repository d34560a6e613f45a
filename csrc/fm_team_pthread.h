// fm_team_pthread.h: a thread starter for the team pool made of pthread_create, for the C test and
// bench programs (the Python module starts its threads through CPython instead; see fm_team.h).
// Use: fm_team_set_starter(fm_start_pthread) before the first team.
#ifndef FM_TEAM_PTHREAD_H
#define FM_TEAM_PTHREAD_H

#include <pthread.h>
#include <stdlib.h>

#include "fm_team.h"

typedef struct { void (*body)(void *); void *arg; } fm_pthread_start;

static void *fm_pthread_body(void *p)
{
    fm_pthread_start start = *(fm_pthread_start *)p;
    free(p);
    start.body(start.arg);
    return NULL;
}

static int fm_start_pthread(void (*body)(void *), void *arg)
{
    pthread_t thread;
    fm_pthread_start *start = malloc(sizeof *start);
    if (start == NULL) return -1;
    *start = (fm_pthread_start){body, arg};
    if (pthread_create(&thread, NULL, fm_pthread_body, start) != 0) {
        free(start);
        return -1;
    }
    pthread_detach(thread);
    return 0;
}

#endif
