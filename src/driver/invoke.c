/* invoke.c - what every step call shares: retries, backoff, error wrapping.
 * How one attempt travels is the transport's business (invoke_http.c,
 * invoke_inproc.c). */
#include "driver/invoke.h"

#include <stdint.h>
#include <stdlib.h>
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

spStatus invoker_Call(const invoker *v, const char *step, const cJSON *request,
                      cJSON **response, int *attempts)
{
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
        st = v->transport->call(v, step, request, response);
        if (st == SP_OK || !sp_IsRetryable(st))
            break;
    }
    if (attempts)
        *attempts = n;
    if (st)
        return sp_Wrap(st, "step %s%s", step, n > 1 ? " (after retries)" : "");
    return SP_OK;
}

void invoker_ThreadDone(const invoker *v)
{
    if (v && v->transport && v->transport->thread_done)
        v->transport->thread_done();
}
