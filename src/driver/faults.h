/* faults.h - fault injection for reproducible runs of the local system.
 *
 * `spirt train --kill-peer P --at-iteration T [--restart-after S]`: at the
 * start of iteration T, peer P's redis-server is SIGKILLed (so its
 * steps fail and it leaves the job while the others go on); with
 * --restart-after the server is started again S seconds later on the same
 * port and directory, recovering its state from the AOF, and the peer
 * rejoins (executor). The restart runs on a thread that lives until
 * faults_Stop, because the runner's children die with the thread that
 * forked them (PR_SET_PDEATHSIG). */
#ifndef SPIRT_FAULTS_H
#define SPIRT_FAULTS_H

#include <cJSON.h>

#include "job/job.h"
#include "driver/runner.h"
#include "driver/train.h"

typedef struct faults faults;

/* *out = NULL when the job asks for no fault. The runner must outlive the
 * faults object. */
spStatus faults_Start(const job_config *job, runner *r, const train_observer *obs,
                      faults **out);
/* The iteration at whose start the fault is injected (-1: none). */
long faults_At(const faults *f);
/* Injects the kill (the executor calls this at the start of faults_At,
 * with every live worker held, so all peers applied the same iteration
 * and the run is reproducible). NULL f is fine. */
void faults_Inject(faults *f, long t);
/* Cancels a pending restart, joins the thread. NULL is fine. */
void faults_Stop(faults *f);
/* The injected events for the report: [{"kind","peer","iteration"?,
 * "at_s","ok","error"?}] (a new array; caller owns it). */
cJSON *faults_Events(faults *f);

#endif
