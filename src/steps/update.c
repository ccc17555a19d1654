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

#include "steps/step_util.h"
#include "steps/steps.h"

/* *last = -1 when nothing was applied yet. */
static spStatus update_Last(store *s, const char *key, long *last)
{
    uint8_t *buf = NULL;
    size_t len = 0;
    *last = -1;
    spStatus st = store_GetBlob(s, key, &buf, &len);
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return SP_OK;
    }
    if (st)
        return sp_Wrap(st, "%s", key);
    char text[32];
    int ok = len > 0 && len < sizeof text;
    if (ok) {
        memcpy(text, buf, len);
        text[len] = 0;
        char *end;
        *last = strtol(text, &end, 10);
        ok = *end == 0 && *last >= 0;
    }
    free(buf);
    return ok ? SP_OK : sp_Error(SP_ERR_FORMAT, "%s does not hold an iteration number", key);
}

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
    if ((st = raw_CheckTensors(s, keys, 1, q->n_params, "init")) ||
        (st = raw_CheckTensors(s, keys + 1, 1, q->n_params, "aggregate")))
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
    char ka[160], text[32];
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_SHAPE | REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    if (q.job.optim.kind == OPTIM_ADAM) {
        st = sp_Error(SP_ERR_INVALID, "job.optimizer adam: the in-database update supports sgd "
                                      "and momentum only");
        goto out;
    }
    if ((st = req_OwnStore(&q, &s)) || (st = req_Key(&q, ka, "applied:%d", q.peer)))
        goto out;
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if ((st = update_Last(s, ka, &last)))
        goto out;
    if (last > q.iteration) {
        st = sp_Error(SP_ERR_CONFLICT, "iteration %ld is stale: peer %d already applied %ld",
                      q.iteration, q.peer, last);
        goto out;
    }
    int duplicate = last == q.iteration;
    if (!duplicate) {
        snprintf(text, sizeof text, "%ld", q.iteration);
        if ((st = update_Apply(&q, s, &in_db)) ||
            (st = store_PutBlob(s, ka, text, strlen(text), 0)))
            goto out;
    }
    io_Account(&io, &snap);
    io_Add(&io.store_ms, t0);
    cJSON_AddBoolToObject(res, "in_db", in_db);
    cJSON_AddBoolToObject(res, "duplicate", duplicate);
    io_Answer(res, &io);
out:
    req_Free(&q);
    return st;
}
