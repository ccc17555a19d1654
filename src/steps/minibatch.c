/* minibatch.c - decides which dataset rows form minibatch m of peer p at
 * iteration t (shard, epoch order, slot; MLLESS with scale-in re-strides
 * the shards over the live workers, steps/mlless.h) and stores just their indices in
 * the peer's Redis (mb:p:t:m, a few hundred bytes). The gradient step reads
 * them and fetches the rows from the shared Redis itself, so the rows cross
 * the network once instead of three times (shared -> here -> the peer's
 * Redis -> gradient). */
#include <stdlib.h>
#include <string.h>

#include "steps/mlless.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    int m, M, N;
    long iters;         /* iterations per epoch (I) */
    long slot;          /* (t mod I)*M + m */
    int epoch;
    int shard;          /* whose shard: the peer's, or re-strided */
    size_t shard_off, shard_len;
} mb_plan;

/* Works out which rows the slot covers (see steps.h) and checks that the
 * request's numbers describe full slots of this dataset. */
static spStatus mb_Plan(const step_req *q, const data_meta *meta, mb_plan *p)
{
    spStatus st;
    long max_iters;
    p->m = q->m;
    p->M = q->job.minibatches;
    p->N = q->job.workers;
    if (q->peer >= p->N)
        return sp_Error(SP_ERR_INVALID, "\"peer\": %d is out of range for %d workers", q->peer,
                        p->N);
    if ((st = job_ItersPerEpoch(&q->job, meta->n_train, &max_iters)))
        return st;
    if ((st = req_GetLong(q->body, FIELD_ITERS_PER_EPOCH, 1, max_iters, 0, max_iters, &p->iters)))
        return sp_Wrap(st, "with %d workers, M=%d and batch %d", p->N, p->M, q->job.batch);
    p->slot = (q->iteration % p->iters) * p->M + p->m;
    p->shard = q->peer;
    p->epoch = q->epoch ? q->epoch : (int)(q->iteration / p->iters + 1);
    return SP_OK;
}

/* MLLESS with scale-in (steps/mlless.h, re-striding): the shard and slot
 * from the cursor and the live set of the supervisor's decision of t-1
 * ({job}:decision:<t-1>, in the shared Redis that is every MLLESS worker's
 * database). */
static spStatus mb_Restride(const step_req *q, store *s, mb_plan *p)
{
    char key[160];
    uint8_t *buf = NULL;
    size_t len = 0;
    spStatus st = req_Key(q, key, "decision:%ld", q->iteration - 1);
    if (st || (st = store_GetBlob(s, key, &buf, &len)))
        return st ? sp_Wrap(st, "%s (the supervisor writes it every iteration)", key) : st;
    cJSON *d = cJSON_ParseWithLength((const char *)buf, len);
    free(buf);
    const cJSON *cur = cJSON_GetObjectItemCaseSensitive(d, "cursor");
    const cJSON *live = cJSON_GetObjectItemCaseSensitive(d, FIELD_LIVE), *e;
    int rank = -1, i = 0;
    cJSON_ArrayForEach(e, live) {
        if (cJSON_IsNumber(e) && (int)e->valuedouble == q->peer)
            rank = i;
        i++;
    }
    long total = (long)p->N * p->iters * p->M;
    if (!cJSON_IsNumber(cur) || rank < 0 || cur->valuedouble < 0 ||
        cur->valuedouble + (double)(rank + 1) * p->M > (double)total)
        st = sp_Error(SP_ERR_FORMAT, "%s: no cursor, or worker %d is not live in it", key,
                      q->peer);
    else
        mlless_Restride((long)cur->valuedouble, rank, p->m, p->M, p->N, &p->shard, &p->slot);
    cJSON_Delete(d);
    return st;
}

static spStatus mb_Rows(const step_req *q, const mb_plan *p, size_t **out)
{
    size_t b = (size_t)q->job.batch;
    uint32_t *order = malloc(sizeof *order * p->shard_len);
    size_t *idx = malloc(sizeof *idx * b);
    if (!order || !idx) {
        free(order);
        free(idx);
        return sp_Error(SP_ERR_NOMEM, "out of memory for a shard of %zu rows", p->shard_len);
    }
    dataset_EpochOrder(p->shard_len, q->job.seed, p->epoch, p->shard, order);
    size_t first = (size_t)p->slot * b;
    for (size_t i = 0; i < b; i++)
        idx[i] = p->shard_off + order[first + i];
    free(order);
    *out = idx;
    return SP_OK;
}

STEP_DEFINE(minibatch, Minibatch, REQ_SHAPE | REQ_ITERATION | REQ_PEER | REQ_SHARED | REQ_M, 1)

static spStatus minibatch_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    step_io *io = &c->io;
    data_meta meta;
    mb_plan plan;
    store *shared, *own;
    size_t *idx = NULL;
    int have;
    char key[160];
    spStatus st;
    if ((st = req_Shared(q, &shared)) || (st = req_OwnStore(q, &own)))
        goto out;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(shared);
    if ((st = meta_Read(shared, q->job.id, &meta, &have)))
        goto out;
    if (!have) {
        st = sp_Error(SP_ERR_NOT_FOUND, "no dataset for job %s in the shared redis (run init)",
                      q->job.id);
        goto out;
    }
    io_Account(io, &snap);
    io_Add(&io->transfer_ms, t0);
    if ((st = meta_CheckShape(&meta, q)) || (st = mb_Plan(q, &meta, &plan)) ||
        (q->job.arch == ARCH_MLLESS && q->job.scale_in && q->iteration > 0 &&
         (st = mb_Restride(q, own, &plan))))
        goto out;
    dataset_ShardRange(meta.n_train, plan.N, plan.shard, &plan.shard_off, &plan.shard_len);
    if ((st = mb_Rows(q, &plan, &idx)))
        goto out;
    size_t b = (size_t)q->job.batch;
    t0 = io_NowMs();
    snap = io_Snap(own);
    if ((st = req_Key(q, key, "mb:%d:%ld:%d", q->peer, q->iteration, plan.m)) ||
        (st = rows_PutIndices(own, key, idx, b, STEPS_TTL_S)))
        goto out;
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    cJSON_AddNumberToObject(res, "samples", (double)b);
    cJSON_AddNumberToObject(res, "slot", (double)plan.slot);
    cJSON_AddNumberToObject(res, "shard", plan.shard);
    cJSON_AddNumberToObject(res, FIELD_EPOCH, plan.epoch);
    cJSON_AddNumberToObject(res, FIELD_ITERS_PER_EPOCH, (double)plan.iters);
    cJSON_AddStringToObject(res, "key", key);
out:
    free(idx);
    return st;
}
