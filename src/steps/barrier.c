/* barrier.c - waits until every live peer announced iteration t, or the
 * timeout passes; the late ones are reported as missing and the iteration
 * goes on with the peers that arrived (context "live" narrows the
 * following steps to them). The caller announced (notify) before calling
 * this, so it must be among the arrived: if it is not, its notify was never
 * made and the answer is 409, since waiting again would not change that. */
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/steps.h"

/* Time left to answer before the runtime's per-request deadline. */
#define BARRIER_MARGIN_MS 100

static spStatus barrier_Timeout(const rt_request *req, const step_req *q, int *timeout_ms)
{
    spStatus st = req_GetInt(q->body, "timeout_ms", 1, 3600000, 0, q->job.sync_timeout_ms,
                             timeout_ms);
    if (st || req->deadline_ms <= 0)
        return st;
    int64_t left = req->deadline_ms - rt_NowMs() - BARRIER_MARGIN_MS;
    if (left <= 0)
        return sp_Error(SP_ERR_TIMEOUT, "barrier: no time left before the request deadline");
    if (left < *timeout_ms)
        *timeout_ms = (int)left;
    return SP_OK;
}

static void barrier_Answer(cJSON *res, const sync_arrival *a, int n)
{
    cJSON *arrived = cJSON_AddArrayToObject(res, "arrived");
    cJSON *missing = cJSON_AddArrayToObject(res, "missing");
    cJSON *losses = cJSON_AddArrayToObject(res, "losses");
    for (int i = 0; i < n; i++) {
        if (!a[i].arrived) {
            cJSON_AddItemToArray(missing, cJSON_CreateNumber(a[i].member));
            continue;
        }
        cJSON_AddItemToArray(arrived, cJSON_CreateNumber(a[i].member));
        /* The loss a peer sent with its announcement, null if none. */
        cJSON *p = a[i].payload ? cJSON_Parse(a[i].payload) : NULL;
        const cJSON *l = cJSON_GetObjectItemCaseSensitive(p, "loss");
        cJSON_AddItemToArray(losses, cJSON_IsNumber(l) ? cJSON_CreateNumber(l->valuedouble)
                                                       : cJSON_CreateNull());
        cJSON_Delete(p);
    }
    cJSON *ctx = cJSON_AddObjectToObject(res, "context");
    cJSON_AddItemToObject(ctx, "live", cJSON_Duplicate(arrived, 1));
}

spStatus step_Barrier(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    sync_conn *c;
    int *live = NULL, n = 0, timeout_ms, n_arrived = 0, self = -1;
    sync_arrival *arr = NULL;
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    int hi = q.n_peers ? q.n_peers : q.job.workers;
    if ((st = req_GetPeerList(q.body, "live", hi, 0, &live, &n)) ||
        (st = barrier_Timeout(req, &q, &timeout_ms)) || (st = steps_Nats(&q, &c)))
        goto out;
    for (int i = 0; i < n; i++)
        if (live[i] == q.peer)
            self = i;
    if (self < 0) {
        st = sp_Error(SP_ERR_INVALID, "\"live\" must include the calling peer %d", q.peer);
        goto out;
    }
    if (!(arr = calloc((size_t)n, sizeof *arr))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    double t0 = io_NowMs();
    st = sync_Await(c, q.job.id, "avg", q.iteration, live, n, timeout_ms, arr, &n_arrived);
    io_Add(&io.sync_ms, t0);
    if (st)
        goto out;
    if (!arr[self].arrived) {
        st = sp_Error(SP_ERR_CONFLICT,
                      "peer %d itself has not announced iteration %ld (notify must run before "
                      "the barrier)",
                      q.peer, q.iteration);
        goto out;
    }
    barrier_Answer(res, arr, n);
    cJSON_AddNumberToObject(res, "timeout_ms", timeout_ms);
    io_Answer(res, &io);
out:
    if (arr)
        sync_ArrivalsFree(arr, n);
    free(arr);
    free(live);
    req_Free(&q);
    return st;
}
