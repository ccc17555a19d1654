/* invoke.c - what every step call shares: retries, backoff, error wrapping.
 * How one attempt travels is the transport's business (invoke_http.c,
 * invoke_inproc.c). */
#include "driver/invoke.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/clock.h"
#include "core/rng.h"
#include "steps/steps.h"

static void backoff_Sleep(int attempt)
{
    /* 50 ms doubling, with jitter so retrying peers do not stampede. */
    static _Thread_local rng r;
    static _Thread_local int seeded;
    if (!seeded) {
        rng_Seed(&r, (uint64_t)clock_NowMs(), (uint64_t)(uintptr_t)&r);
        seeded = 1;
    }
    long ms = 50L << (attempt < 6 ? attempt : 6);
    ms = ms / 2 + (long)rng_Below(&r, (uint64_t)ms);
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

spStatus invoker_CallTraced(const invoker *v, const char *step, const cJSON *request,
                            cJSON **response, invoke_trace *tr)
{
    memset(tr, 0, sizeof *tr);
    const step_def *def = steps_Find(step);
    if (!def)
        return sp_Error(SP_ERR_NOT_FOUND, "unknown step '%s'", step);
    if (!v->transport)
        return sp_Error(SP_ERR_INVALID, "step %s: the invoker has no transport", step);
    int max = def->idempotent ? 1 + v->retries : 1;
    spStatus st = SP_OK;
    int n = 0;
    while (n < max) {
        if (n > 0)
            backoff_Sleep(n - 1);
        n++;
        *response = NULL;
        double t0 = clock_Now();
        st = v->transport->call(v, step, request, response);
        if (st == SP_ERR_TIMEOUT) {
            if (tr->n_timeouts < INVOKE_TRACE_MAX)
                tr->timeout_ms[tr->n_timeouts] = (clock_Now() - t0) * 1000.0;
            if (tr->n_timeouts++ == 0)
                snprintf(tr->timeout_msg, sizeof tr->timeout_msg, "%s", sp_LastError());
        }
        if (st == SP_OK || !sp_IsRetryable(st))
            break;
    }
    tr->attempts = n;
    if (st)
        return sp_Wrap(st, "step %s%s", step, n > 1 ? " (after retries)" : "");
    return SP_OK;
}

spStatus invoker_Call(const invoker *v, const char *step, const cJSON *request,
                      cJSON **response, int *attempts)
{
    invoke_trace tr;
    spStatus st = invoker_CallTraced(v, step, request, response, &tr);
    if (attempts)
        *attempts = tr.attempts;
    return st;
}

void invoker_ThreadDone(const invoker *v)
{
    if (v && v->transport && v->transport->thread_done)
        v->transport->thread_done();
}
