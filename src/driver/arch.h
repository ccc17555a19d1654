/* arch.h - an architecture is data: the ordered steps of one worker's
 * iteration, each with its fan-out and the time category it reports under.
 *
 * The executor runs any of these tables; the four architectures differ only
 * in which steps they list, so they share every function, model and byte
 * format and can be compared on equal terms. */
#ifndef SPIRT_ARCH_H
#define SPIRT_ARCH_H

#include "job/job.h"

typedef enum {
    FAN_WORKER,     /* once per worker */
    FAN_MINIBATCH,  /* M times per worker, in parallel */
    FAN_LEADER      /* once, by the first live worker (master / supervisor) */
} fan_kind;

/* Where a step's time is counted in reports and `spirt compare`. */
typedef enum {
    CAT_COMPUTE,    /* minibatch fetch + gradient */
    CAT_COMM,       /* moving tensors between workers / databases */
    CAT_SYNC,       /* waiting for others */
    CAT_UPDATE,     /* applying the update */
    CAT_N
} time_cat;

typedef struct {
    const char *step;
    fan_kind fan;
    time_cat cat;
} arch_step;

typedef struct {
    arch_kind kind;           /* also says where the workers' databases are
                               * (job_PerPeerDatabases) */
    const arch_step *steps;
    int n_steps;
    int tolerates_failures;   /* a failed worker is dropped, not fatal */
} arch_def;

/* NULL for ARCH_SINGLE (no workflow). */
const arch_def *arch_Get(arch_kind k);
const char *arch_CatName(time_cat c);

#endif
