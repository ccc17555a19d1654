/* chunk_gather.c - ScatterReduce (LambdaML) step 6: waits until every chunk
 * owner announced "merged", fetches the N merged chunks straight into
 * their places in one vector (two pipelined round trips: the first P%N
 * chunks are one element longer than the rest) and stores it as this
 * worker's aggregate agg:<p>:<t> for update. A sparse model's merged
 * chunks are sparse, over ascending ranges: joined in chunk order they are
 * the sparse mean (sparse_Concat). */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/chunks.h"
#include "steps/collective.h"
#include "steps/sparse_mean.h"
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

/* The n merged chunks fetched into their places in one vector, stored at
 * key. */
static spStatus gather_Dense(const step_req *q, store *s, int n, const char *key, step_io *io)
{
    float *agg = tensor_Alloc(q->n_params);
    if (!agg)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    int longer = (int)(q->n_params % (size_t)n);
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    spStatus st = gather_Group(q, s, n, 0, longer, agg);
    if (!st)
        st = gather_Group(q, s, n, longer, n, agg);
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if (st)
        st = sp_Wrap(st, "chunk_gather");
    if (!st) {
        t0 = io_NowMs();
        snap = io_Snap(s);
        st = store_PutTensor(s, key, agg, q->n_params, STEPS_TTL_S);
        io_Account(io, &snap);
        io_Add(&io->store_ms, t0);
    }
    free(agg);
    return st;
}

/* A sparse model's aggregate: the n merged chunks joined, stored at key. */
static spStatus gather_Sparse(const step_req *q, store *s, int n, const char *key, step_io *io)
{
    uint8_t *parts[JOB_MAX_WORKERS] = {0}, *agg = NULL;
    size_t len;
    spStatus st = SP_OK;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    for (int c = 0; c < n && !st; c++) {
        char mk[160];
        if (!(st = req_Key(q, mk, "merged:%d:%ld", c, q->iteration)))
            st = sparse_Get(s, mk, q->n_params, &parts[c], &len);
    }
    io_Add(&io->transfer_ms, t0);
    t0 = io_NowMs();
    if (!st && !(st = sparse_Concat(parts, n, q->n_params, &agg, &len)))
        st = store_PutBlob(s, key, agg, len, STEPS_TTL_S);
    io_Add(&io->store_ms, t0);
    io_Account(io, &snap);
    for (int c = 0; c < n; c++)
        free(parts[c]);
    free(agg);
    return st ? sp_Wrap(st, "chunk_gather") : SP_OK;
}

STEP_DEFINE(chunk_gather, ChunkGather,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus chunk_gather_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s = c->own;
    sync_arrival *arr = NULL;
    int n = c->n_live;
    char key[160];
    spStatus st =
        collective_Await(c->req, q, "merged", q->iteration, c->live, n, &arr, &c->io);
    if (st || (st = req_Key(q, key, "agg:%d:%ld", q->peer, q->iteration)) ||
        (st = model_SpecIsSparse(&q->spec) ? gather_Sparse(q, s, n, key, &c->io)
                                           : gather_Dense(q, s, n, key, &c->io)))
        goto out;
    cJSON_AddNumberToObject(res, "chunks", n);
    cJSON_AddStringToObject(res, "key", key);
out:
    collective_FreeArrivals(arr, n);
    return st;
}
