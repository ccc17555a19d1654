/* average.c - the peer's M gradients averaged inside its own Redis
 * (SPIRT.AVG when the module is loaded; the data never leaves the
 * database). The values themselves are not scanned here - that is the
 * point of averaging in place - but every input's size is checked first,
 * and aggregate rejects a non-finite average when it leaves the database. */
#include <stdio.h>

#include "steps/poison.h"
#include "steps/step_util.h"
#include "steps/steps.h"

#define AVG_KEY_CAP 160

spStatus step_Average(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    store *s;
    int M, in_db = 0;
    char dst[AVG_KEY_CAP], names[64][AVG_KEY_CAP];
    const char *srcs[64];
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_SHAPE | REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    if ((st = req_GetInt(q.body, "minibatches", 1, 64, 0, q.job.minibatches, &M)) ||
        (st = req_OwnStore(&q, &s)) ||
        (st = req_Key(&q, dst, "avg:%d:%ld", q.peer, q.iteration)))
        goto out;
    for (int m = 0; m < M; m++) {
        if ((st = store_Key(names[m], AVG_KEY_CAP, q.job.id, "grad:%d:%ld:%d", q.peer,
                            q.iteration, m)))
            goto out;
        srcs[m] = names[m];
    }
    double t0 = io_NowMs();
    io_snap snap = io_Snap(s);
    if ((st = steps_CheckTensors(s, srcs, M, q.n_params, "gradient")) ||
        (st = store_Average(s, dst, srcs, M, STEPS_TTL_S, &in_db)))
        goto out;
    io_Account(&io, &snap);
    io_Add(&io.store_ms, t0);
    /* A Byzantine peer (--attack) publishes a poisoned average instead. */
    if ((st = poison_Average(&q, s, dst, &io)))
        goto out;
    cJSON_AddBoolToObject(res, "in_db", in_db);
    cJSON_AddNumberToObject(res, "inputs", M);
    cJSON_AddStringToObject(res, "key", dst);
    io_Answer(res, &io);
out:
    req_Free(&q);
    return st;
}
