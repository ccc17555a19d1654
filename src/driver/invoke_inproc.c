/* invoke_inproc.c - the in-process transport: the same step handlers the
 * function processes run, called directly with the same JSON in and out. */
#include "driver/invoke.h"

#include "core/clock.h"
#include "steps/steps.h"
#include "store/store.h"

static spStatus inproc_Call(const invoker *v, const char *step, const cJSON *request,
                            cJSON **out)
{
    const step_def *def = steps_Find(step);
    if (!def)
        return sp_Error(SP_ERR_NOT_FOUND, "unknown step '%s'", step);
    rt_request req = {.body = request, .deadline_ms = clock_NowMs() + v->timeout_ms};
    cJSON *res = cJSON_CreateObject();
    if (!res)
        return sp_Error(SP_ERR_NOMEM, "out of memory for the answer of step %s", step);
    spStatus st = def->handler(&req, res, NULL);
    if (st) {
        cJSON_Delete(res);
        return st;
    }
    *out = res;
    return SP_OK;
}

/* Handlers cache Redis connections per thread: a thread that ends without
 * this leaks them (and their sockets). */
const invoke_transport invoke_Inproc = {"inproc", inproc_Call, store_ReleaseCached};
