/* executor.h - runs an architecture's workflow for every worker.
 *
 * One thread per worker walks the architecture's step table each iteration,
 * invoking steps through the invoker (HTTP or in-process) with fan-out; step
 * answers' "context" feeds the next steps of the same iteration. At each
 * epoch end the live workers meet, the model is evaluated on the test set
 * (time excluded from training time), and the observer is told. A worker
 * whose steps keep failing is dropped when the architecture tolerates it;
 * otherwise the job stops with that error. */
#ifndef SPIRT_EXECUTOR_H
#define SPIRT_EXECUTOR_H

#include <cJSON.h>

#include "driver/arch.h"
#include "driver/invoke.h"
#include "driver/train.h"

typedef struct {
    const job_config *job;
    const arch_def *arch;
    const invoker *inv;
    const cJSON *base;        /* common request fields (job, shape, peers, ...) */
    long iters_per_epoch;
    const train_observer *obs;
} exec_plan;

spStatus executor_Run(const exec_plan *plan, train_result *res);

/* Async-signal-safe: asks running executors to stop after the current step. */
void executor_RequestStop(void);

#endif
