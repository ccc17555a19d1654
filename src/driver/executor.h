/* executor.h - runs an architecture's workflow for every worker.
 *
 * One thread per worker walks the architecture's step table each iteration,
 * invoking steps through the invoker (HTTP or in-process) with fan-out; step
 * answers' "context" feeds the next steps of the same iteration. At each
 * epoch end the live workers meet, the model is evaluated on the test set
 * (time excluded from training time), and the observer is told. A worker
 * whose steps keep failing is dropped when the architecture tolerates it;
 * otherwise the job stops with that error.
 *
 * A worker whose barrier answers that the iteration's decided live set
 * left it out ("self_excluded": alive, but too late for the others) stops
 * that iteration and takes the same way back as a failed one, without it
 * counting as a failure.
 *
 * With plan->rejoin a dropped worker waits on standby until hooks->peer_up
 * says its database answers again, then rejoins: it picks the iteration J
 * after the furthest live worker's, holds every live worker at the start
 * of J, runs the "rejoin" step (re-authenticate, copy the model of a live
 * peer that applied J-1, announce "join" for J), and the live workers'
 * barriers at J include it (request field "joiners"). */
#ifndef SPIRT_EXECUTOR_H
#define SPIRT_EXECUTOR_H

#include <cJSON.h>

#include "driver/arch.h"
#include "driver/invoke.h"
#include "driver/train.h"

/* Optional callbacks into the driver (all may be NULL). */
typedef struct {
    void *ctx;
    /* Fault injection at a quiet point: every live worker is held at the
     * start of iteration hold_at (>= 0) until on_hold(ctx, hold_at) ran, so
     * no step is in flight and all peers applied the same iteration. */
    long hold_at;
    void (*on_hold)(void *ctx, long t);
    /* Worker w joined (1) or left (0) the job: heartbeats follow this. */
    void (*member)(void *ctx, int w, int in_job);
    /* 1 when worker w's peer (its database) answers again. */
    int (*peer_up)(void *ctx, int w);
} exec_hooks;

typedef struct {
    const job_config *job;
    const arch_def *arch;
    const invoker *inv;
    const cJSON *base;        /* common request fields (job, shape, peers, ...) */
    long iters_per_epoch;
    const train_observer *obs;
    /* Fault tolerance (zero = off). */
    long start_iteration;     /* resume: the first iteration to run */
    const int *down;          /* workers[] flags: start failed (unreachable) */
    int rejoin;               /* failed workers stand by and rejoin */
    const exec_hooks *hooks;
} exec_plan;

spStatus executor_Run(const exec_plan *plan, train_result *res);

/* Async-signal-safe: asks running executors to stop after the current step. */
void executor_RequestStop(void);

#endif
