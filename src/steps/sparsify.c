/* sparsify.c - MLLESS steps 3-4 on every worker p: apply p's own update
 * of iteration t to its replica at once, then send only what is
 * significant of the updates it applied (steps/mlless.h), and report
 * (loss, has_update) to the supervisor on NATS ("report").
 *
 *  1. own update: params:p -= lr * avg:p:t with the job's optimizer
 *     (SPIRT.UPDATE ... MARK applied:p t, momentum in mom:p);
 *  2. filter (store_Filter, SPIRT.FILTER in the database): acc:p:t =
 *     acc:p:t-1 + lr * (mom:p with momentum, else avg:p:t) - the step
 *     just applied, weight decay aside (each replica decays its own
 *     weights); the significant part goes to {job}:sparse:<p>:<t>, the
 *     residual stays in acc:p:t.
 *
 * Nothing dense crosses the network: both run inside the shared Redis.
 * The accumulator is versioned by iteration and the update marked, so the
 * step is idempotent: a retry skips the applied update and filters the same
 * inputs again. This worker's keys of t-1 and its accumulator of t-2 have
 * no reader left and are unlinked (a scale-in's survivors read the removed
 * worker's acc of t in their apply of t). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/collective.h"
#include "steps/mlless.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

/* Steps 1 and 2 of the header; *k = coordinates sent. */
static spStatus sparsify_Apply(const step_req *q, store *s, size_t *k)
{
    char kp[160], kg[160], km[160], ka[160], acc[160], sp[160], in[160] = "";
    float mom = q->job.optim.momentum;
    spStatus st;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kg, "avg:%d:%ld", q->peer, q->iteration)) ||
        (st = req_Key(q, km, "mom:%d", q->peer)) || (st = req_Key(q, ka, "applied:%d", q->peer)) ||
        (st = req_Key(q, acc, "acc:%d:%ld", q->peer, q->iteration)) ||
        (st = req_Key(q, sp, "sparse:%d:%ld", q->peer, q->iteration)) ||
        (q->iteration > 0 && (st = req_Key(q, in, "acc:%d:%ld", q->peer, q->iteration - 1))))
        return st;
    /* The filter's accumulator must be there before the replica changes:
     * a call that cannot finish leaves it as it was. */
    int there = 1;
    if (in[0] && (st = store_Exists(s, in, &there)))
        return st;
    if (!there)
        return sp_Error(SP_ERR_NOT_FOUND, "sparsify: no accumulator '%s' (iteration %ld not "
                        "filtered)", in, q->iteration - 1);
    if ((st = store_UpdateMarked(s, kp, kg, mom > 0 ? km : NULL, q->job.optim.lr, mom,
                                 q->job.optim.weight_decay, ka, q->iteration, NULL, NULL)))
        return sp_Wrap(st, "sparsify: own update");
    store_filter f = {.acc_out = acc, .sparse_out = sp, .params = kp,
                      .src = mom > 0 ? km : kg, .acc_in = in[0] ? in : NULL,
                      .scale = q->job.optim.lr,
                      .thr = mlless_Threshold(q->job.significance, q->iteration),
                      .ttl_s = STEPS_TTL_S};
    st = store_Filter(s, &f, k, NULL);
    return st ? sp_Wrap(st, "sparsify: filter") : SP_OK;
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
    size_t k = 0;
    spStatus st0 = steps_CheckInDbOptimizer(q);
    if (st0)
        return st0;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    spStatus st = sparsify_Apply(q, s, &k);
    io_Account(io, &snap);
    io_Add(&io->store_ms, t0);
    if (st || (st = sparsify_Report(q, k, io)) ||
        (st = sparsify_Cleanup(q, s, q->job.minibatches, io)))
        return st;
    cJSON_AddNumberToObject(res, "sent", (double)k);
    cJSON_AddNumberToObject(res, "params", (double)q->n_params);
    cJSON_AddNumberToObject(res, "threshold", mlless_Threshold(q->job.significance, q->iteration));
    return SP_OK;
}
