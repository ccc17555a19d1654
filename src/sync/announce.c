/* announce.c - "member m finished topic t of iteration i", stored in the
 * job's stream so later waiters still see it, then rung on the doorbell
 * subject (sync.h) for waiters that subscribed while it was being stored. */
#include "sync/sync_internal.h"

#include <stdio.h>

static natsStatus publish(sync_conn *c, const char *subj, const char *msg_id, const void *payload,
                          size_t len, jsPubAck **ack, jsErrCode *jerr)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = c->timeout_ms;
    po.MsgId = msg_id;
    *jerr = 0;
    return js_Publish(ack, c->js, subj, payload, (int)len, &po, jerr);
}

spStatus sync_Announce(sync_conn *c, const char *job, const char *topic, long iteration,
                       int member, const void *payload, size_t len)
{
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_Announce: no connection");
    char tok[SYNC_TOKEN_CAP];
    spStatus r = sync_JobToken(job, tok, sizeof tok);
    if (r == SP_OK)
        r = sync_CheckTopic(topic);
    if (r != SP_OK)
        return r;
    if (iteration < 0 || member < 0)
        return sp_Error(SP_ERR_INVALID, "sync_Announce: iteration %ld / member %d is negative",
                        iteration, member);
    if (len > SYNC_PAYLOAD_MAX)
        return sp_Error(SP_ERR_TOO_LARGE, "sync_Announce: payload of %zu bytes, at most %d",
                        len, SYNC_PAYLOAD_MAX);
    if (len > 0 && !payload)
        return sp_Error(SP_ERR_INVALID, "sync_Announce: payload NULL with length %zu", len);

    char subj[SYNC_SUBJECT_CAP], msg_id[SYNC_SUBJECT_CAP];
    snprintf(subj, sizeof subj, "spirt.%s.sync.%s.%ld.%d", tok, topic, iteration, member);
    snprintf(msg_id, sizeof msg_id, "%s.%s.%ld.%d", tok, topic, iteration, member);

    jsErrCode jerr = 0;
    natsStatus s = publish(c, subj, msg_id, payload, len, NULL, &jerr);
    if (s == NATS_NO_RESPONDERS) {
        /* Nothing stores this subject: the stream is missing (never made, or
         * deleted). Create it and try once more; a real outage fails again. */
        r = sync_EnsureStreamToken(c, tok);
        if (r != SP_OK)
            return sp_Wrap(r, "announce %s/%s/%ld/%d", job, topic, iteration, member);
        s = publish(c, subj, msg_id, payload, len, NULL, &jerr);
    }
    if (s != NATS_OK) {
        char what[SYNC_SUBJECT_CAP + 16];
        snprintf(what, sizeof what, "announcing on %s", subj);
        return sync_Fail(c, s, jerr, what);
    }
    /* The ack says the stream stored it; only now may the doorbell ring
     * (await.c says why). Fire and forget: libnats buffers it through a
     * reconnect, and a waiter that misses it still finds the stored
     * announcement when it sweeps the stream after a reconnect. */
    snprintf(subj, sizeof subj, "spirt.%s.bell.%s.%ld.%d", tok, topic, iteration, member);
    natsConnection_Publish(c->nc, subj, payload, (int)len);
    return SP_OK;
}
