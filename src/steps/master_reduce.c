/* master_reduce.c - AllReduce (LambdaML) step 4-5, run by the master only
 * (the first live worker): waits until every live worker announced its
 * average ("avg", sent by notify), fetches the N averages from the shared
 * Redis, takes their MEAN (the published replication summed them by
 * mistake), stores it as {job}:reduced:<t> and announces "reduced".
 *
 * Recomputed from the same inputs on a retry (same value, same
 * announcement id). Once every worker announced iteration t, all of them
 * have fetched reduced:<t-1>, so that key is unlinked here. */
#include <stdio.h>
#include <stdlib.h>

#include "core/tensor.h"
#include "steps/collective.h"
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

static spStatus reduce_Store(const step_req *q, store *s, const reduce_bufs *b, step_io *io)
{
    char key[160], old[160];
    spStatus st;
    if ((st = req_Key(q, key, "reduced:%ld", q->iteration)))
        return st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = store_PutTensor(s, key, b->out, q->n_params, STEPS_TTL_S);
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
    if ((st = collective_Await(c->req, q, "avg", q->iteration, b.live, b.n, &arr, &c->io)) ||
        (st = reduce_Fetch(q, s, &b, &c->io)))
        goto out;
    if (!(b.out = tensor_Alloc(q->n_params))) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    double t0 = io_NowMs();
    tensor_Mean(q->n_params, b.n, (const float *const *)b.xs, b.out);
    io_Add(&c->io.compute_ms, t0);
    if (!tensor_AllFinite(q->n_params, b.out)) {
        st = sp_Error(SP_ERR_INVALID, "the mean of the averages is not finite; nothing stored");
        goto out;
    }
    if ((st = reduce_Store(q, s, &b, &c->io)) ||
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
