/* chunk_reduce.c - ScatterReduce (LambdaML) steps 4-5: the calling worker
 * owns chunk r (its rank among the live workers). It waits until every
 * live worker announced "scattered", fetches chunk r from each (one
 * pipelined round trip: all have the same length), averages them, stores
 * {job}:merged:<r>:<t> and announces "merged". A sparse model's chunks
 * are sparse: their mean (sparse_Mean) is stored sparse.
 *
 * Recomputed from the same inputs on a retry. When every worker has
 * scattered iteration t, all of them finished iteration t-1 (gathered the
 * merged chunks), so this owner's chunks and merged chunk of t-1 are
 * unlinked here. */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/chunks.h"
#include "steps/collective.h"
#include "steps/sparse_mean.h"
#include "steps/step_ctx.h"

static spStatus reduce_Chunk(const step_req *q, store *s, const int *live, int n, int r,
                             size_t len, float *mean, step_io *io)
{
    char names[JOB_MAX_WORKERS][160];
    const char *keys[JOB_MAX_WORKERS];
    float *outs[JOB_MAX_WORKERS];
    spStatus st = SP_OK;
    float *buf = tensor_Alloc(len * (size_t)n + 1);
    if (!buf)
        return sp_Error(SP_ERR_NOMEM, "out of memory for %d chunks of %zu", n, len);
    for (int i = 0; i < n && !st; i++) {
        st = req_Key(q, names[i], "chunk:%d:%d:%ld", r, live[i], q->iteration);
        keys[i] = names[i];
        outs[i] = buf + (size_t)i * len;
    }
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if (!st && len > 0)
        st = store_GetTensorsInto(s, keys, n, len, outs, NULL);
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if (!st) {
        t0 = io_NowMs();
        tensor_Mean(len, n, (const float *const *)outs, mean);
        io_Add(&io->compute_ms, t0);
        if (!tensor_AllFinite(len, mean))
            st = sp_Error(SP_ERR_INVALID, "merged chunk %d is not finite; nothing stored", r);
    }
    free(buf);
    return st ? sp_Wrap(st, "chunk_reduce of chunk %d", r) : SP_OK;
}

/* A sparse model's chunk r: the mean of the n workers' sparse chunks,
 * stored at key. */
static spStatus reduce_Sparse(const step_req *q, store *s, const int *live, int n, int r,
                              const char *key, step_io *io)
{
    uint8_t *parts[JOB_MAX_WORKERS] = {0}, *mean = NULL;
    size_t len;
    spStatus st = SP_OK;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    for (int i = 0; i < n && !st; i++) {
        char ck[160];
        if (!(st = req_Key(q, ck, "chunk:%d:%d:%ld", r, live[i], q->iteration)))
            st = sparse_Get(s, ck, q->n_params, &parts[i], &len);
    }
    io_Add(&io->transfer_ms, t0);
    t0 = io_NowMs();
    if (!st)
        st = sparse_Mean(parts, n, q->n_params, &mean, &len);
    io_Add(&io->compute_ms, t0);
    if (!st)
        st = store_PutBlob(s, key, mean, len, STEPS_TTL_S);
    io_Account(io, &snap);
    for (int i = 0; i < n; i++)
        free(parts[i]);
    free(mean);
    return st ? sp_Wrap(st, "chunk_reduce of chunk %d", r) : SP_OK;
}

/* A dense chunk r: the mean of the n workers' chunks, stored at key. */
static spStatus reduce_Dense(const step_req *q, store *s, const int *live, int n, int r,
                             size_t len, const char *key, step_io *io)
{
    float *mean = tensor_Alloc(len + 1);
    if (!mean)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    spStatus st = reduce_Chunk(q, s, live, n, r, len, mean, io);
    if (!st) {
        double t0 = io_NowMs();
        io_snap snap = io_Snap(s);
        st = store_PutTensor(s, key, mean, len, STEPS_TTL_S);
        io_Account(io, &snap);
        io_Add(&io->store_ms, t0);
    }
    free(mean);
    return st;
}

/* Chunks sent to this owner and its merged chunk, of iteration t. */
static spStatus reduce_Drop(const step_req *q, store *s, const int *live, int n, int r, long t,
                            step_io *io)
{
    char names[JOB_MAX_WORKERS + 1][160];
    const char *keys[JOB_MAX_WORKERS + 1];
    spStatus st = req_Key(q, names[n], "merged:%d:%ld", r, t);
    keys[n] = names[n];
    for (int i = 0; i < n && !st; i++) {
        st = req_Key(q, names[i], "chunk:%d:%d:%ld", r, live[i], t);
        keys[i] = names[i];
    }
    return st ? st : keys_Unlink(s, keys, n + 1, io);
}

STEP_DEFINE(chunk_reduce, ChunkReduce,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus chunk_reduce_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s = c->own;
    sync_arrival *arr = NULL;
    int n = c->n_live, r = c->rank;
    size_t off, len;
    char key[160];
    spStatus st =
        collective_Await(c->req, q, "scattered", q->iteration, c->live, n, &arr, &c->io);
    if (st)
        goto out;
    chunk_Range(q->n_params, n, r, &off, &len);
    if ((st = req_Key(q, key, "merged:%d:%ld", r, q->iteration)) ||
        (st = model_SpecIsSparse(&q->spec) ? reduce_Sparse(q, s, c->live, n, r, key, &c->io)
                                           : reduce_Dense(q, s, c->live, n, r, len, key, &c->io)) ||
        (st = collective_Announce(q, "merged", q->iteration, NULL, &c->io)))
        goto out;
    if (q->iteration > 0 &&
        (st = reduce_Drop(q, s, c->live, n, r, q->iteration - 1, &c->io)))
        goto out;
    cJSON_AddNumberToObject(res, "chunk", r);
    cJSON_AddNumberToObject(res, "offset", (double)off);
    cJSON_AddNumberToObject(res, "length", (double)len);
    cJSON_AddStringToObject(res, "key", key);
out:
    collective_FreeArrivals(arr, n);
    return st;
}
