/* fetch_reduced.c - AllReduce (LambdaML) step 6 on every worker: waits for
 * the master's "reduced" announcement, fetches {job}:reduced:<t> and makes
 * it this worker's aggregate agg:<p>:<t> for update. Fetching it into the
 * function and storing it back is the algorithm's download of the result
 * (every architecture stores the aggregate it applies: the update runs in
 * the database), so both transfers are counted.
 *
 * This worker's keys of iteration t-1 are unlinked here: its update t-1 is
 * done and the master fetched its average before announcing t-1. */
#include <stdio.h>
#include <stdlib.h>

#include "steps/collective.h"
#include "steps/steps.h"

static spStatus fetch_Copy(const step_req *q, store *s, step_io *io)
{
    char src[160], dst[160];
    float *x = NULL;
    size_t n;
    spStatus st;
    if ((st = req_Key(q, src, "reduced:%ld", q->iteration)) ||
        (st = req_Key(q, dst, "agg:%d:%ld", q->peer, q->iteration)))
        return st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = store_GetTensor(s, src, q->n_params, &x, &n);
    io_Add(&io->transfer_ms, t0);
    if (st) {
        io_Account(io, &snap);
        return sp_Wrap(st, "fetch_reduced");
    }
    t0 = io_NowMs();
    st = store_PutTensor(s, dst, x, q->n_params, STEPS_TTL_S);
    io_Add(&io->store_ms, t0);
    io_Account(io, &snap);
    free(x);
    return st;
}

spStatus step_FetchReduced(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    sync_arrival *arr = NULL;
    store *s;
    int *live = NULL, n = 0, rank;
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_SHAPE | REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    if ((st = live_Get(&q, &live, &n, &rank)) || (st = req_OwnStore(&q, &s)) ||
        (st = collective_Await(req, &q, "reduced", q.iteration, live, 1, &arr, &io)) ||
        (st = fetch_Copy(&q, s, &io)))
        goto out;
    if (q.iteration > 0 &&
        (st = keys_DropIteration(&q, s, q.peer, q.iteration - 1, q.job.minibatches, &io)))
        goto out;
    cJSON_AddNumberToObject(res, "master", live[0]);
    io_Answer(res, &io);
out:
    collective_FreeArrivals(arr, 1);
    free(live);
    req_Free(&q);
    return st;
}
