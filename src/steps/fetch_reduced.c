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
#include "steps/sparse_mean.h"
#include "steps/step_ctx.h"

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
    if (model_SpecIsSparse(&q->spec)) {
        /* a sparse model's mean: a sparse blob, copied as it is */
        uint8_t *blob = NULL;
        st = sparse_Get(s, src, q->n_params, &blob, &n);
        io_Add(&io->transfer_ms, t0);
        t0 = io_NowMs();
        if (st == SP_OK)
            st = store_PutBlob(s, dst, blob, n, STEPS_TTL_S);
        io_Add(&io->store_ms, t0);
        io_Account(io, &snap);
        free(blob);
        return st ? sp_Wrap(st, "fetch_reduced") : SP_OK;
    }
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

STEP_DEFINE(fetch_reduced, FetchReduced,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus fetch_reduced_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    sync_arrival *arr = NULL;
    spStatus st;
    if ((st = collective_Await(c->req, q, "reduced", q->iteration, c->live, 1, &arr, &c->io)) ||
        (st = fetch_Copy(q, c->own, &c->io)))
        goto out;
    if (q->iteration > 0 &&
        (st = keys_DropIteration(q, c->own, q->peer, q->iteration - 1, q->job.minibatches,
                                 &c->io)))
        goto out;
    cJSON_AddNumberToObject(res, "master", c->live[0]);
out:
    collective_FreeArrivals(arr, 1);
    return st;
}
