/* reaper.h - what cleans up after a local run whose driver was SIGKILLed.
 *
 * The runner's children die with the driver (PR_SET_PDEATHSIG), but a
 * SIGKILLed driver runs no cleanup of its own, so its run dir - logs, the
 * run's secrets, the JetStream store - would stay in the temp dir. The
 * reaper is a small process forked at the start of a run that outlives the
 * driver: when the driver is gone without having said goodbye, it makes sure
 * the children are gone too and removes the run dir. */
#ifndef SPIRT_REAPER_H
#define SPIRT_REAPER_H

#include <sys/types.h>

#include "core/status.h"

typedef struct {
    pid_t pid;                /* the reaper; 0 when none runs */
    int fd;                   /* write end of its pipe; -1 when none */
} reaper;

/* Forks the reaper of `dir` (a runner's "/spirt-run-" dir). Call it before
 * starting any child. With keep_dir it only finishes off the children. */
spStatus reaper_Start(reaper *rp, const char *dir, int keep_dir);
/* Tells it about a child to finish off should the driver die. */
void reaper_Watch(reaper *rp, pid_t child);
/* A normal end: the driver stopped every child and removed (or kept on
 * purpose) the dir itself. The reaper exits and is waited for. */
void reaper_Finish(reaper *rp);

#endif
