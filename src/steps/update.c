/* update.c - params -= lr * (momentum-smoothed) agg:p:t inside the peer's
 * Redis (SPIRT.UPDATE when the module is loaded).
 *
 * An update is not naturally idempotent, so the peer's Redis remembers the
 * last iteration applied ({job}:applied:<p>): a retry of the same iteration (the
 * first attempt succeeded but its answer was lost) is answered without
 * applying again ("duplicate": true), an older iteration is 409. The marker
 * is written after the update, so only a crash between the two can still
 * apply an iteration twice. init clears the marker. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "steps/applied.h"
#include "steps/step_util.h"
#include "steps/steps.h"

static spStatus update_Apply(const step_req *q, store *s, int *in_db)
{
    char kp[160], kg[160], km[160];
    spStatus st;
    float momentum = q->job.optim.momentum;
    if ((st = req_Key(q, kp, "params:%d", q->peer)) ||
        (st = req_Key(q, kg, "agg:%d:%ld", q->peer, q->iteration)) ||
        (st = req_Key(q, km, "mom:%d", q->peer)))
        return st;
    const char *keys[2] = {kp, kg};
    if ((st = steps_CheckTensors(s, keys, 1, q->n_params, "init")) ||
        (st = steps_CheckTensors(s, keys + 1, 1, q->n_params, "aggregate")))
        return st;
    return store_Update(s, kp, kg, momentum > 0 ? km : NULL, q->job.optim.lr, momentum,
                        q->job.optim.weight_decay, in_db);
}

spStatus step_Update(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    store *s;
    long last;
    int in_db = 0;
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_SHAPE | REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    if (q.job.optim.kind == OPTIM_ADAM) {
        st = sp_Error(SP_ERR_INVALID, "job.optimizer adam: the in-database update supports sgd "
                                      "and momentum only");
        goto out;
    }
    if ((st = req_OwnStore(&q, &s)))
        goto out;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if ((st = applied_Read(s, &q, q.peer, &last)))
        goto out;
    if (last > q.iteration) {
        st = sp_Error(SP_ERR_CONFLICT, "iteration %ld is stale: peer %d already applied %ld",
                      q.iteration, q.peer, last);
        goto out;
    }
    int duplicate = last == q.iteration;
    if (!duplicate &&
        ((st = update_Apply(&q, s, &in_db)) || (st = applied_Write(s, &q, q.peer, q.iteration))))
        goto out;
    io_Account(&io, &snap);
    io_Add(&io.store_ms, t0);
    cJSON_AddBoolToObject(res, "in_db", in_db);
    cJSON_AddBoolToObject(res, "duplicate", duplicate);
    io_Answer(res, &io);
out:
    req_Free(&q);
    return st;
}
