/* master_reduce.c - AllReduce (LambdaML) step 4-5, run by the master only
 * (the first live worker): waits until every live worker announced its
 * average ("avg", sent by notify), fetches the N averages from the shared
 * Redis, takes their MEAN (the published replication summed them by
 * mistake), stores it as {job}:reduced:<t> and announces "reduced".
 *
 * A sparse model's averages are sparse: their mean is stored sparse.
 * Recomputed from the same inputs on a retry (same value, same
 * announcement id). Once every worker announced iteration t, all of them
 * have fetched reduced:<t-1>, so that key is unlinked here. */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/collective.h"
#include "steps/sparse_mean.h"
#include "steps/step_ctx.h"

typedef struct {
    const int *live;  /* the wrapper's live list (not freed here) */
    int n;
    float **xs;
    float *out;
} reduce_bufs;

static void bufs_Free(reduce_bufs *b)
{
    for (int i = 0; b->xs && i < b->n; i++)
        free(b->xs[i]);
    free(b->xs);
    free(b->out);
}

/* The N averages in one pipelined round trip, each checked for size and
 * finiteness by the store. */
static spStatus reduce_Fetch(const step_req *q, store *s, reduce_bufs *b, step_io *io)
{
    char names[JOB_MAX_WORKERS][160];
    const char *keys[JOB_MAX_WORKERS];
    spStatus st;
    b->xs = calloc((size_t)b->n, sizeof *b->xs);
    if (!b->xs)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    for (int i = 0; i < b->n; i++) {
        if ((st = req_Key(q, names[i], "avg:%d:%ld", b->live[i], q->iteration)))
            return st;
        keys[i] = names[i];
        if (!(b->xs[i] = tensor_Alloc(q->n_params)))
            return sp_Error(SP_ERR_NOMEM, "out of memory for %d averages", b->n);
    }
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = store_GetTensorsInto(s, keys, b->n, q->n_params, b->xs, NULL);
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    return st ? sp_Wrap(st, "master_reduce") : SP_OK;
}

/* A sparse model's N averages, each read whole and checked, and their
 * mean (as a blob in b->out). */
static spStatus reduce_Sparse(const step_req *q, store *s, reduce_bufs *b, size_t *len,
                              step_io *io)
{
    char key[160];
    spStatus st = SP_OK;
    if (!(b->xs = calloc((size_t)b->n, sizeof *b->xs)))
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    for (int i = 0; st == SP_OK && i < b->n; i++) {
        uint8_t *blob = NULL;
        size_t n;
        if ((st = req_Key(q, key, "avg:%d:%ld", b->live[i], q->iteration)) == SP_OK &&
            (st = sparse_Get(s, key, q->n_params, &blob, &n)) == SP_OK)
            b->xs[i] = (float *)(void *)blob;
    }
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if (st)
        return sp_Wrap(st, "master_reduce");
    t0 = io_NowMs();
    uint8_t *out = NULL;
    st = sparse_Mean((uint8_t *const *)(void *)b->xs, b->n, q->n_params, &out, len);
    b->out = (float *)(void *)out;
    io_Add(&io->compute_ms, t0);
    return st;
}

/* The N dense averages and their mean in b->out. */
static spStatus reduce_Dense(const step_req *q, store *s, reduce_bufs *b, step_io *io)
{
    spStatus st = reduce_Fetch(q, s, b, io);
    if (st)
        return st;
    if (!(b->out = tensor_Alloc(q->n_params)))
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    double t0 = io_NowMs();
    tensor_Mean(q->n_params, b->n, (const float *const *)b->xs, b->out);
    io_Add(&io->compute_ms, t0);
    if (!tensor_AllFinite(q->n_params, b->out))
        return sp_Error(SP_ERR_INVALID, "the mean of the averages is not finite; nothing stored");
    return SP_OK;
}

/* b->out (a dense tensor, or a sparse blob of `sparse_len` bytes). */
static spStatus reduce_Store(const step_req *q, store *s, const reduce_bufs *b,
                             size_t sparse_len, step_io *io)
{
    char key[160], old[160];
    spStatus st;
    if ((st = req_Key(q, key, "reduced:%ld", q->iteration)))
        return st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = sparse_len ? store_PutBlob(s, key, b->out, sparse_len, STEPS_TTL_S)
                    : store_PutTensor(s, key, b->out, q->n_params, STEPS_TTL_S);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    if (st || q->iteration == 0)
        return st;
    const char *keys[1] = {old};
    if ((st = req_Key(q, old, "reduced:%ld", q->iteration - 1)))
        return st;
    return keys_Unlink(s, keys, 1, io);
}

STEP_DEFINE(master_reduce, MasterReduce,
            REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_FIRST_LIVE | STEP_OWN, 1)

static spStatus master_reduce_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s = c->own;
    reduce_bufs b = {.live = c->live, .n = c->n_live};
    sync_arrival *arr = NULL;
    spStatus st;
    size_t sparse_len = 0;
    if ((st = collective_Await(c->req, q, "avg", q->iteration, b.live, b.n, &arr, &c->io)) ||
        (st = model_SpecIsSparse(&q->spec) ? reduce_Sparse(q, s, &b, &sparse_len, &c->io)
                                           : reduce_Dense(q, s, &b, &c->io)))
        goto out;
    if ((st = reduce_Store(q, s, &b, sparse_len, &c->io)) ||
        (st = collective_Announce(q, "reduced", q->iteration, NULL, &c->io)))
        goto out;
    cJSON_AddNumberToObject(res, "inputs", b.n);
    char key[160];
    if (!req_Key(q, key, "reduced:%ld", q->iteration))
        cJSON_AddStringToObject(res, "key", key);
out:
    collective_FreeArrivals(arr, b.n);
    bufs_Free(&b);
    return st;
}
