/* notify.c - "peer p has its average for iteration t": one announcement on
 * the job's JetStream stream (de-duplicated by the server, so a retry is
 * harmless). An optional "loss" travels along for the driver's progress. */
#include <stdio.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/steps.h"

spStatus step_Notify(const rt_request *req, cJSON *res, void *ctx)
{
    (void)ctx;
    step_req q;
    step_io io;
    sync_conn *c;
    double loss = 0;
    int has_loss;
    char payload[64] = "";
    io_Init(&io);
    spStatus st = req_Parse(req, REQ_ITERATION | REQ_PEER, &q);
    if (st)
        return st;
    if ((st = req_GetNumber(q.body, "loss", &loss, &has_loss)) || (st = steps_Nats(&q, &c)))
        goto out;
    if (has_loss)
        snprintf(payload, sizeof payload, "{\"loss\":%.9g}", loss);
    double t0 = io_NowMs();
    if ((st = sync_Announce(c, q.job.id, "avg", q.iteration, q.peer, has_loss ? payload : NULL,
                            has_loss ? strlen(payload) : 0)))
        goto out;
    io_Add(&io.sync_ms, t0);
    io_Answer(res, &io);
out:
    req_Free(&q);
    return st;
}
