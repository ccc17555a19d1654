/* update.c - params -= lr * (momentum-smoothed) agg:p:t inside the peer's
 * Redis (SPIRT.UPDATE when the module is loaded).
 *
 * An update is not naturally idempotent, so the peer's Redis remembers the
 * last iteration applied ({job}:applied:<p>): a retry of the same iteration
 * (the first attempt succeeded but its answer was lost, or the database
 * crashed after it and came back from its AOF) is answered without applying
 * again ("duplicate": true), an older iteration is 409. The update and the
 * marker are written by one command (SPIRT.UPDATE ... MARK; without the
 * module one MULTI/EXEC, store_UpdateMarked), so no crash can separate
 * them. The marker is read first as well, only for the answer: a duplicate
 * skips the tensor checks (its aggregate may be gone). init clears it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/applied.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

static spStatus update_Apply(const step_req *q, store *s, int *duplicate, int *in_db)
{
    char kp[160], kg[160], km[160], ka[160];
    spStatus st;
    float momentum = q->job.optim.momentum;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kg, "agg:%d:%ld", q->peer, q->iteration)) ||
        (st = req_Key(q, km, "mom:%d", q->peer)) || (st = req_Key(q, ka, "applied:%d", q->peer)))
        return st;
    const char *keys[2] = {kp, kg};
    /* A sparse model's aggregate has no fixed size: SPIRT.UPDATE checks
     * its dense length. */
    if ((st = steps_CheckTensors(s, keys, 1, q->n_params, "init")) ||
        (!model_SpecIsSparse(&q->spec) &&
         (st = steps_CheckTensors(s, keys + 1, 1, q->n_params, "aggregate"))))
        return st;
    return store_UpdateMarked(s, kp, kg, momentum > 0 ? km : NULL, q->job.optim.lr, momentum,
                              q->job.optim.weight_decay, ka, q->iteration, duplicate, in_db);
}

STEP_DEFINE(update, Update, REQ_SHAPE | REQ_ITERATION | REQ_PEER, 1)

static spStatus update_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    store *s;
    long last;
    int in_db = 0;
    spStatus st;
    spStatus st0 = steps_CheckInDbOptimizer(q);
    if (st0)
        return st0;
    /* Its own database only after the job check: a request that can never
     * work is 400 even while the database is down. */
    if ((st = req_OwnStore(q, &s)))
        return st;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if ((st = applied_Read(s, q, q->peer, &last)))
        return st;
    if (last > q->iteration)
        return sp_Error(SP_ERR_CONFLICT, "iteration %ld is stale: peer %d already applied %ld",
                        q->iteration, q->peer, last);
    int duplicate = last == q->iteration;
    if (!duplicate && (st = update_Apply(q, s, &duplicate, &in_db)))
        return st;
    io_Account(&c->io, &snap);
    io_Add(&c->io.store_ms, t0);
    cJSON_AddBoolToObject(res, FIELD_IN_DB, in_db);
    cJSON_AddBoolToObject(res, "duplicate", duplicate);
    return SP_OK;
}
