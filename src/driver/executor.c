/* executor.c - running a job's workflow: set up the state, start one
 * thread per worker, evaluate what the last epoch left, report. */
#include "driver/exec_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/clock.h"

volatile sig_atomic_t exec_stop_requested;

void executor_RequestStop(void) { exec_stop_requested = 1; }

void exec_WaitMs(exec_state *x, long ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    pthread_cond_timedwait(&x->cond, &x->lock, &ts);
}

void exec_Fatal(exec_state *x, spStatus st, const char *fmt, ...)
{
    if (!x->fatal) {
        x->fatal = st;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(x->fatal_msg, sizeof x->fatal_msg, fmt, ap);
        va_end(ap);
    }
    x->stop = 1;
    pthread_cond_broadcast(&x->cond);
}

static exec_state *state_New(const exec_plan *plan, train_result *res)
{
    exec_state *x = calloc(1, sizeof *x);
    if (!x)
        return NULL;
    if (!stats_Init(&x->stats)) {
        stats_Free(&x->stats);
        free(x);
        return NULL;
    }
    x->plan = plan;
    x->res = res;
    x->total = (long)plan->job->epochs * plan->iters_per_epoch;
    x->iterations = plan->start_iteration;
    /* A resumed run evaluates its final model even if it has no iteration
     * left to run. */
    x->eval_iteration = plan->start_iteration > 0 ? -1 : 0;
    pthread_mutex_init(&x->lock, NULL);
    pthread_cond_init(&x->cond, NULL);
    return x;
}

static void state_Free(exec_state *x)
{
    stats_Free(&x->stats);
    pthread_mutex_destroy(&x->lock);
    pthread_cond_destroy(&x->cond);
    free(x);
}

/* Starts every worker thread and waits for all of them. */
static void workers_Run(exec_state *x, worker *wk)
{
    int n = x->plan->job->workers, created = 0;
    pthread_t *th = calloc((size_t)n, sizeof *th);
    for (; th && created < n; created++)
        if (pthread_create(&th[created], NULL, loop_WorkerThread, &wk[created]) != 0)
            break;
    if (created < n) {
        pthread_mutex_lock(&x->lock);
        exec_Fatal(x, SP_ERR_NOMEM, "cannot start worker threads");
        /* Workers that never started can't reach the gate. */
        x->mem.n_alive = created;
        pthread_mutex_unlock(&x->lock);
    }
    for (int w = 0; w < created; w++)
        pthread_join(th[w], NULL);
    free(th);
}

static spStatus plan_Check(const exec_plan *plan)
{
    const job_config *job = plan->job;
    if (job->workers < 1 || job->workers > EXEC_MAX_WORKERS)
        return sp_Error(SP_ERR_INVALID, "%d workers: the executor runs 1 to %d", job->workers,
                        EXEC_MAX_WORKERS);
    if (plan->arch->n_steps > EXEC_MAX_STEPS)
        return sp_Error(SP_ERR_INVALID, "%d steps: the executor runs at most %d",
                        plan->arch->n_steps, EXEC_MAX_STEPS);
    if (job->minibatches < 1 || job->minibatches > EXEC_MAX_FANOUT)
        return sp_Error(SP_ERR_INVALID, "%d minibatches: the executor fans out 1 to %d",
                        job->minibatches, EXEC_MAX_FANOUT);
    if (plan->iters_per_epoch < 1)
        return sp_Error(SP_ERR_INVALID, "an epoch needs at least one iteration");
    return SP_OK;
}

spStatus executor_Run(const exec_plan *plan, train_result *res)
{
    spStatus st = plan_Check(plan);
    if (st)
        return st;
    const job_config *job = plan->job;
    exec_state *x = state_New(plan, res);
    worker *wk = calloc((size_t)job->workers, sizeof *wk);
    if (!x || !wk) {
        if (x)
            state_Free(x);
        free(wk);
        return sp_Error(SP_ERR_NOMEM, "out of memory for %d workers", job->workers);
    }
    members_Init(x, wk);
    if (x->mem.n_alive == 0) {
        state_Free(x);
        free(wk);
        return sp_Error(SP_ERR_UNAVAILABLE, "no worker can start: every peer is unreachable");
    }
    x->start = clock_Now();
    workers_Run(x, wk);
    members_CountLost(x);
    /* Stopped between epoch ends (target reached): evaluate the final model. */
    if (!x->fatal && !exec_stop_requested && x->iterations != x->eval_iteration &&
        members_FirstAlive(x) >= 0) {
        int epoch = (int)((x->iterations + plan->iters_per_epoch - 1) / plan->iters_per_epoch);
        loop_Evaluate(x, epoch);
    }
    double elapsed = clock_Now() - x->start;
    res->train_seconds = elapsed - x->eval_seconds;
    res->iterations = x->iterations;
    res->final_loss = x->loss;
    res->samples_per_second = res->train_seconds > 0 ? res->samples / res->train_seconds : 0;
    stats_Report(x);
    st = x->fatal;
    if (!st && exec_stop_requested)
        st = sp_Error(SP_ERR_UNAVAILABLE, "interrupted");
    else if (st)
        sp_Error(st, "%s", x->fatal_msg);
    state_Free(x);
    free(wk);
    return st;
}
