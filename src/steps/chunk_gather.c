/* chunk_gather.c - ScatterReduce (LambdaML) step 6: waits until every chunk
 * owner announced "merged", fetches the N merged chunks straight into
 * their places in one vector (two pipelined round trips: the first P%N
 * chunks are one element longer than the rest) and stores it as this
 * worker's aggregate agg:<p>:<t> for update. */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/chunks.h"
#include "steps/collective.h"
#include "steps/step_ctx.h"

/* Chunks [from, to) all have length len; fetched into agg at their offsets. */
static spStatus gather_Group(const step_req *q, store *s, int n, int from, int to, float *agg)
{
    char names[JOB_MAX_WORKERS][160];
    const char *keys[JOB_MAX_WORKERS];
    float *outs[JOB_MAX_WORKERS];
    size_t off, len = 0;
    int k = 0;
    spStatus st = SP_OK;
    for (int c = from; c < to && !st; c++, k++) {
        chunk_Range(q->n_params, n, c, &off, &len);
        st = req_Key(q, names[k], "merged:%d:%ld", c, q->iteration);
        keys[k] = names[k];
        outs[k] = agg + off;
    }
    if (st || k == 0 || len == 0)
        return st;
    return store_GetTensorsInto(s, keys, k, len, outs, NULL);
}

STEP_DEFINE(chunk_gather, ChunkGather,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus chunk_gather_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s = c->own;
    sync_arrival *arr = NULL;
    float *agg = NULL;
    int n = c->n_live;
    char key[160];
    spStatus st =
        collective_Await(c->req, q, "merged", q->iteration, c->live, n, &arr, &c->io);
    if (st)
        goto out;
    if (!(agg = tensor_Alloc(q->n_params))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    int longer = (int)(q->n_params % (size_t)n);
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = gather_Group(q, s, n, 0, longer, agg);
    if (!st)
        st = gather_Group(q, s, n, longer, n, agg);
    io_Account(&c->io, &snap);
    io_Add(&c->io.transfer_ms, t0);
    if (st) {
        st = sp_Wrap(st, "chunk_gather");
        goto out;
    }
    if ((st = req_Key(q, key, "agg:%d:%ld", q->peer, q->iteration)))
        goto out;
    t0 = io_NowMs();
    snap = io_Snap(s);
    st = store_PutTensor(s, key, agg, q->n_params, STEPS_TTL_S);
    io_Account(&c->io, &snap);
    io_Add(&c->io.store_ms, t0);
    if (st)
        goto out;
    cJSON_AddNumberToObject(res, "chunks", n);
    cJSON_AddStringToObject(res, "key", key);
out:
    collective_FreeArrivals(arr, n);
    free(agg);
    return st;
}
