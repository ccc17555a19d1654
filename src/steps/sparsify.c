/* sparsify.c - MLLESS steps 3-4 on every worker: accumulate this
 * iteration's average gradient, send only the significant coordinates
 * (steps/mlless.h) as a sparse update {job}:sparse:<p>:<t>, keep the rest
 * in the accumulator {job}:acc:<p>:<t>, and report (loss, has_update) to
 * the supervisor on NATS ("report").
 *
 * The accumulator is versioned by iteration so the step is idempotent: it
 * always starts from acc:<p>:<t-1> (zeros at t = 0) and overwrites the same
 * outputs on a retry. With scale-in on, the supervisor's decision of t-1
 * ({job}:decision:<t-1>) may name this worker the heir of a removed one:
 * the removed worker's acc:<r>:<t-1> - what it never sent - is added in.
 * This worker's keys of t-1 and its accumulator of t-2 have no reader left
 * and are unlinked. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "steps/collective.h"
#include "steps/mlless.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    float *params, *g, *acc, *val;
    uint32_t *idx;
} sp_bufs;

static void bufs_Free(sp_bufs *b)
{
    free(b->params);
    free(b->g);
    free(b->acc);
    free(b->val);
    free(b->idx);
}

static spStatus get_Into(const step_req *q, store *s, const char *key, float **out)
{
    size_t n;
    spStatus st = store_GetTensor(s, key, q->n_params, out, &n);
    return st ? sp_Wrap(st, "sparsify") : SP_OK;
}

/* The worker removed after t-1 whose accumulator this worker inherits, or
 * -1. Only with scale-in: the supervisor writes a decision every iteration. */
static spStatus sparsify_Heir(const step_req *q, store *s, int *from)
{
    char key[160];
    uint8_t *buf = NULL;
    size_t len = 0;
    *from = -1;
    spStatus st = req_Key(q, key, "decision:%ld", q->iteration - 1);
    if (st || (st = store_GetBlob(s, key, &buf, &len)))
        return st ? sp_Wrap(st, "%s (the supervisor writes it every iteration)", key) : st;
    cJSON *d = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *heir = cJSON_GetObjectItemCaseSensitive(d, "heir");
    const cJSON *rem = cJSON_GetObjectItemCaseSensitive(d, "remove");
    if (!cJSON_IsNumber(heir) || !cJSON_IsNumber(rem))
        st = sp_Error(SP_ERR_FORMAT, "%s is not a supervisor decision", key);
    else if ((int)heir->valuedouble == q->peer && rem->valuedouble >= 0 &&
             rem->valuedouble < JOB_MAX_WORKERS)
        *from = (int)rem->valuedouble;
    cJSON_Delete(d);
    return st;
}

/* acc:<p>:<t-1>, plus an inherited accumulator, into b->acc. */
static spStatus sparsify_Accumulator(const step_req *q, store *s, sp_bufs *b, int *from)
{
    char key[160];
    float *extra = NULL;
    spStatus st;
    *from = -1;
    if (q->iteration == 0) {
        b->acc = tensor_Alloc(q->n_params);
        return b->acc ? SP_OK : sp_Error(SP_ERR_NOMEM, "out of memory");
    }
    if ((st = req_Key(q, key, "acc:%d:%ld", q->peer, q->iteration - 1)) ||
        (st = get_Into(q, s, key, &b->acc)))
        return st;
    if (!q->job.scale_in || (st = sparsify_Heir(q, s, from)) || *from < 0)
        return st;
    if ((st = req_Key(q, key, "acc:%d:%ld", *from, q->iteration - 1)) ||
        (st = get_Into(q, s, key, &extra)))
        return st;
    tensor_Axpy(q->n_params, 1.0f, extra, b->acc);
    free(extra);
    return SP_OK;
}

static spStatus sparsify_Store(const step_req *q, store *s, const sp_bufs *b, size_t k)
{
    char key[160];
    uint8_t *blob = NULL;
    size_t len;
    spStatus st;
    if ((st = req_Key(q, key, "acc:%d:%ld", q->peer, q->iteration)) ||
        (st = store_PutTensor(s, key, b->acc, q->n_params, STEPS_TTL_S)) || k == 0)
        return st;
    if ((st = req_Key(q, key, "sparse:%d:%ld", q->peer, q->iteration)) ||
        (st = sparse_Encode(b->idx, b->val, k, q->n_params, &blob, &len)))
        return st;
    st = store_PutBlob(s, key, blob, len, STEPS_TTL_S);
    free(blob);
    return st;
}

static spStatus sparsify_Cleanup(const step_req *q, store *s, int M, step_io *io)
{
    char key[160];
    const char *keys[1] = {key};
    spStatus st = SP_OK;
    if (q->iteration >= 1)
        st = keys_DropIteration(q, s, q->peer, q->iteration - 1, M, io);
    if (!st && q->iteration >= 2 &&
        !(st = req_Key(q, key, "acc:%d:%ld", q->peer, q->iteration - 2)))
        st = keys_Unlink(s, keys, 1, io);
    return st;
}

static spStatus sparsify_Report(const step_req *q, size_t k, step_io *io)
{
    double loss;
    int has_loss;
    char payload[128];
    spStatus st = req_GetNumber(q->body, FIELD_LOSS, &loss, &has_loss);
    if (st)
        return st;
    if (has_loss)
        snprintf(payload, sizeof payload, "{\"loss\":%.9g,\"has_update\":%s,\"sent\":%zu}", loss,
                 k ? "true" : "false", k);
    else
        snprintf(payload, sizeof payload, "{\"has_update\":%s,\"sent\":%zu}",
                 k ? "true" : "false", k);
    return collective_Announce(q, "report", q->iteration, payload, io);
}

STEP_DEFINE(sparsify, Sparsify, REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_LIVE | STEP_OWN, 1)

static spStatus sparsify_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    step_io *io = &c->io;
    store *s = c->own;
    sp_bufs b = {0};
    int from = -1;
    char kp[160], kg[160];
    spStatus st;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kg, "avg:%d:%ld", q->peer, q->iteration)))
        goto out;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    st = get_Into(q, s, kp, &b.params);
    if (!st)
        st = get_Into(q, s, kg, &b.g);
    if (!st)
        st = sparsify_Accumulator(q, s, &b, &from);
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if (st)
        goto out;
    b.idx = malloc(sizeof *b.idx * q->n_params);
    b.val = malloc(sizeof *b.val * q->n_params);
    if (!b.idx || !b.val) {
        st = sp_Error(SP_ERR_NOMEM, "out of memory");
        goto out;
    }
    float thr = mlless_Threshold(q->job.significance, q->iteration);
    t0 = io_NowMs();
    size_t k =
        mlless_Filter(b.acc, b.g, b.params, q->n_params, q->job.optim.lr, thr, b.idx, b.val);
    io_Add(&io->compute_ms, t0);
    t0 = io_NowMs();
    snap = io_Snap(s);
    st = sparsify_Store(q, s, &b, k);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    if (st || (st = sparsify_Report(q, k, io)) ||
        (st = sparsify_Cleanup(q, s, q->job.minibatches, io)))
        goto out;
    cJSON_AddNumberToObject(res, "sent", (double)k);
    cJSON_AddNumberToObject(res, "params", (double)q->n_params);
    cJSON_AddNumberToObject(res, "threshold", thr);
    if (from >= 0)
        cJSON_AddNumberToObject(res, "inherited_from", from);
out:
    bufs_Free(&b);
    return st;
}
