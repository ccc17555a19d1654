/* minibatch.c - decides which dataset rows form minibatch m of peer p at
 * iteration t (shard, epoch order, slot) and stores just their indices in
 * the peer's Redis (mb:p:t:m, a few hundred bytes). The gradient step reads
 * them and fetches the rows from the shared Redis itself, so the rows cross
 * the network once instead of three times (shared -> here -> the peer's
 * Redis -> gradient). */
#include <stdlib.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

typedef struct {
    int m, M, N;
    long iters;         /* iterations per epoch (I) */
    long slot;          /* (t mod I)*M + m */
    int epoch;
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
    p->epoch = q->epoch ? q->epoch : (int)(q->iteration / p->iters + 1);
    dataset_ShardRange(meta->n_train, p->N, q->peer, &p->shard_off, &p->shard_len);
    return SP_OK;
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
    dataset_EpochOrder(p->shard_len, q->job.seed, p->epoch, q->peer, order);
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
        (st = mb_Rows(q, &plan, &idx)))
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
    cJSON_AddNumberToObject(res, FIELD_EPOCH, plan.epoch);
    cJSON_AddNumberToObject(res, FIELD_ITERS_PER_EPOCH, (double)plan.iters);
    cJSON_AddStringToObject(res, "key", key);
out:
    free(idx);
    return st;
}
