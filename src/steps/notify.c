/* notify.c - "peer p has its average for iteration t": one announcement on
 * the job's JetStream stream (de-duplicated by the server, so a retry is
 * harmless). An optional "loss" travels along for the driver's progress. */
#include <stdio.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

STEP_DEFINE(notify, Notify, REQ_ITERATION | REQ_PEER, 1)

static spStatus notify_Run(step_ctx *c, cJSON *res)
{
    (void)res;
    const step_req *q = &c->q;
    sync_conn *conn;
    double loss = 0;
    int has_loss;
    char payload[64] = "";
    spStatus st;
    if ((st = req_GetNumber(q->body, FIELD_LOSS, &loss, &has_loss)) || (st = steps_Nats(q, &conn)))
        return st;
    if (has_loss)
        snprintf(payload, sizeof payload, "{\"loss\":%.9g}", loss);
    double t0 = io_NowMs();
    if ((st = sync_Announce(conn, q->job.id, "avg", q->iteration, q->peer,
                            has_loss ? payload : NULL, has_loss ? strlen(payload) : 0)))
        return st;
    io_Add(&c->io.sync_ms, t0);
    return SP_OK;
}
