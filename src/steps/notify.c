/* notify.c - "peer p has its average for iteration t": one announcement on
 * the job's JetStream stream (de-duplicated by the server, so a retry is
 * harmless). An optional "loss" travels along for the driver's progress.
 *
 * A SPIRT peer also sends the checksum of the model it computed this
 * iteration's gradients with ("model": the CRC32C its params header holds,
 * one 24-byte read): the barrier keeps only peers that start the iteration
 * from the same model in the decided live set (barrier.c), so a peer whose
 * model drifted - whatever made it - is sent to rejoin instead of mixing
 * its update into the others'. */
#include <stdio.h>
#include <string.h>

#include "steps/step_util.h"
#include "steps/step_ctx.h"
#include "steps/fields.h"

STEP_DEFINE(notify, Notify, REQ_ITERATION | REQ_PEER, 1)

/* The model's checksum as 8 hex digits into hex[9]; "" when the peer has
 * no model yet (nothing to compare). */
static spStatus model_Digest(const step_req *q, char *hex, step_io *io)
{
    char key[160];
    store *s;
    uint32_t crc = 0;
    hex[0] = 0;
    if (q->job.arch != ARCH_SPIRT)
        return SP_OK;
    spStatus st;
    if ((st = req_Key(q, key, "params:%d", q->peer)) || (st = req_OwnStore(q, &s)))
        return st;
    io_snap snap = io_Snap(s);
    st = store_GetTensorCrc(s, key, &crc);
    io_Account(io, &snap);
    if (st == SP_ERR_NOT_FOUND) {
        sp_ClearError();
        return SP_OK;
    }
    if (st == SP_OK)
        snprintf(hex, 9, "%08x", crc);
    return st;
}

static spStatus notify_Run(step_ctx *c, cJSON *res)
{
    (void)res;
    const step_req *q = &c->q;
    sync_conn *conn;
    double loss = 0;
    int has_loss;
    char payload[96] = "", model[9];
    spStatus st;
    if ((st = req_GetNumber(q->body, FIELD_LOSS, &loss, &has_loss)) || (st = steps_Nats(&conn)))
        return st;
    double t0 = io_NowMs();
    if ((st = model_Digest(q, model, &c->io)))
        return st;
    io_Add(&c->io.store_ms, t0);
    int n = 0;
    if (has_loss)
        n += snprintf(payload + n, sizeof payload - (size_t)n, "%s\"" FIELD_LOSS "\":%.9g",
                      n ? "," : "", loss);
    if (model[0])
        n += snprintf(payload + n, sizeof payload - (size_t)n, "%s\"" FIELD_MODEL "\":\"%s\"",
                      n ? "," : "", model);
    char text[100];
    snprintf(text, sizeof text, "{%s}", payload);
    t0 = io_NowMs();
    if ((st = sync_Announce(conn, q->job.id, "avg", q->iteration, q->peer, n ? text : NULL,
                            n ? strlen(text) : 0)))
        return st;
    io_Add(&c->io.sync_ms, t0);
    return SP_OK;
}
