/* average.c - the peer's M gradients averaged inside its own Redis
 * (SPIRT.AVG when the module is loaded; the data never leaves the
 * database). The values themselves are not scanned here - that is the
 * point of averaging in place - but every input's size is checked first,
 * and aggregate rejects a non-finite average when it leaves the database. */
#include <stdio.h>

#include "steps/poison.h"
#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

#define AVG_KEY_CAP 160

STEP_DEFINE(average, Average, REQ_SHAPE | REQ_ITERATION | REQ_PEER | STEP_OWN, 1)

static spStatus average_Run(step_ctx *c, cJSON *res)
{
    const step_req *q = &c->q;
    int M = q->job.minibatches, in_db = 0;
    char dst[AVG_KEY_CAP], names[JOB_MAX_MINIBATCHES][AVG_KEY_CAP];
    const char *srcs[JOB_MAX_MINIBATCHES];
    spStatus st = req_Key(q, dst, "avg:%d:%ld", q->peer, q->iteration);
    if (st)
        return st;
    for (int m = 0; m < M; m++) {
        if ((st = store_Key(names[m], AVG_KEY_CAP, q->job.id, "grad:%d:%ld:%d", q->peer,
                            q->iteration, m)))
            return st;
        srcs[m] = names[m];
    }
    double t0 = io_NowMs();
    io_snap snap = io_Snap(c->own);
    /* A sparse model's gradients have no fixed size: SPIRT.AVG checks
     * their dense length. */
    if ((!model_SpecIsSparse(&q->spec) &&
         (st = steps_CheckTensors(c->own, srcs, M, q->n_params, "gradient"))) ||
        (st = store_Average(c->own, dst, srcs, M, STEPS_TTL_S, &in_db)))
        return st;
    io_Account(&c->io, &snap);
    io_Add(&c->io.store_ms, t0);
    /* A Byzantine peer (--attack) publishes a poisoned average instead. */
    if ((st = poison_Average(q, c->own, dst, &c->io)))
        return st;
    cJSON_AddBoolToObject(res, FIELD_IN_DB, in_db);
    cJSON_AddNumberToObject(res, "inputs", M);
    cJSON_AddStringToObject(res, "key", dst);
    return SP_OK;
}
