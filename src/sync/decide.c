/* decide.c - one decision per (topic, iteration): the first proposal wins.
 *
 * A decision is the only message ever stored on spirt.<J>.sync.<topic>.<t>
 * (no member token, so no wait's filter matches it). Every proposal is
 * published with "expect no message on this subject yet"
 * (Nats-Expected-Last-Subject-Sequence: 0), which the stream checks and
 * applies in one step, so exactly one proposal is ever stored; a later one
 * is refused with "wrong last sequence" and reads the stored decision.
 *
 * The common case costs every proposer one round trip, not only the
 * winner: a proposal carries the message id <J>.<topic>.<t>=<id>, and the
 * server looks for a duplicate id before it checks the expected sequence,
 * so a proposal equal to the decision (same id) is acknowledged as a
 * duplicate and the decision is known without reading it. In an iteration
 * without faults every peer proposes the same thing. Past the stream's
 * de-duplication window (2 min) an equal proposal takes the second round
 * trip, with the same result. */
#include "sync/sync_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DECIDE_ID_MAX 128
/* A refusal followed by an empty read means the decision vanished in
 * between (the stream was purged): propose again, a bounded number of
 * times. */
#define DECIDE_TRIES 3

static spStatus check_Id(const char *id)
{
    size_t n = id ? strlen(id) : 0;
    if (n == 0 || n > DECIDE_ID_MAX)
        return sp_Error(SP_ERR_INVALID, "sync_Decide: the proposal id must be 1 to %d bytes",
                        DECIDE_ID_MAX);
    for (size_t i = 0; i < n; i++) {
        char ch = id[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              ch == '-' || ch == '_'))
            return sp_Error(SP_ERR_INVALID, "sync_Decide: id '%s' has a character outside "
                            "[A-Za-z0-9_-]", id);
    }
    return SP_OK;
}

/* The decision's stream and subject. */
static spStatus decision_Names(const char *job, const char *topic, long iteration, char *tok,
                               char *stream, char *subj)
{
    spStatus r = sync_JobToken(job, tok, SYNC_TOKEN_CAP);
    if (r == SP_OK)
        r = sync_CheckTopic(topic);
    if (r == SP_OK && iteration < 0)
        r = sp_Error(SP_ERR_INVALID, "sync: iteration %ld is negative", iteration);
    if (r != SP_OK)
        return r;
    snprintf(stream, SYNC_TOKEN_CAP + 8, "SPIRT_%s", tok);
    snprintf(subj, SYNC_SUBJECT_CAP, "spirt.%s.sync.%s.%ld", tok, topic, iteration);
    return SP_OK;
}

static spStatus copy_Out(const void *data, size_t len, char **out, size_t *out_len)
{
    *out = malloc(len + 1);
    if (!*out)
        return sp_Error(SP_ERR_NOMEM, "sync: out of memory copying a decision");
    memcpy(*out, data, len);
    (*out)[len] = '\0';
    if (out_len)
        *out_len = len;
    return SP_OK;
}

/* The stored decision, if any (*found = 0 and *out NULL when none). */
static spStatus read_Decision(sync_conn *c, const char *stream, const char *subj, char **out,
                              size_t *len, int *found)
{
    natsMsg *msg = NULL;
    jsErrCode jerr = 0;
    *out = NULL;
    *found = 0;
    natsStatus s = js_GetLastMsg(&msg, c->js, stream, subj, NULL, &jerr);
    if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSStreamNotFoundErr)
        return SP_OK;
    if (s != NATS_OK)
        return sync_Fail(c, s, jerr, "reading a decision");
    spStatus r = copy_Out(natsMsg_GetData(msg), (size_t)natsMsg_GetDataLength(msg), out, len);
    natsMsg_Destroy(msg);
    *found = r == SP_OK;
    return r;
}

spStatus sync_Decision(sync_conn *c, const char *job, const char *topic, long iteration,
                       char **decided, size_t *len, int *found)
{
    char tok[SYNC_TOKEN_CAP], stream[SYNC_TOKEN_CAP + 8], subj[SYNC_SUBJECT_CAP];
    if (decided)
        *decided = NULL;
    if (found)
        *found = 0;
    if (!c || !decided || !found)
        return sp_Error(SP_ERR_INVALID, "sync_Decision: missing connection or output");
    spStatus r = decision_Names(job, topic, iteration, tok, stream, subj);
    return r ? r : read_Decision(c, stream, subj, decided, len, found);
}

/* One proposal: *stored = 1 when the stream now holds it or an equal one
 * (same id), 0 when another decision was there first. */
static spStatus propose(sync_conn *c, const char *tok, const char *subj, const char *msg_id,
                        const void *proposal, size_t len, int *stored)
{
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = c->timeout_ms;
    po.MsgId = msg_id;
    po.ExpectNoMessage = true;
    jsErrCode jerr = 0;
    natsStatus s = js_Publish(NULL, c->js, subj, proposal, (int)len, &po, &jerr);
    if (s == NATS_NO_RESPONDERS) {
        /* No stream stores the subject (never made, or deleted). */
        spStatus r = sync_EnsureStreamToken(c, tok);
        if (r != SP_OK)
            return r;
        s = js_Publish(NULL, c->js, subj, proposal, (int)len, &po, &jerr);
    }
    *stored = s == NATS_OK;
    if (s == NATS_OK || jerr == JSStreamWrongLastSequenceErr)
        return SP_OK;
    char what[SYNC_SUBJECT_CAP + 32];
    snprintf(what, sizeof what, "proposing on %s", subj);
    return sync_Fail(c, s, jerr, what);
}

spStatus sync_Decide(sync_conn *c, const char *job, const char *topic, long iteration,
                     const char *id, const void *proposal, size_t len, char **decided,
                     size_t *decided_len, int *same)
{
    char tok[SYNC_TOKEN_CAP], stream[SYNC_TOKEN_CAP + 8], subj[SYNC_SUBJECT_CAP];
    char msg_id[SYNC_SUBJECT_CAP + DECIDE_ID_MAX];
    if (decided)
        *decided = NULL;
    if (same)
        *same = 0;
    if (!c || !decided || !same)
        return sp_Error(SP_ERR_INVALID, "sync_Decide: missing connection or output");
    spStatus r = decision_Names(job, topic, iteration, tok, stream, subj);
    if (r == SP_OK)
        r = check_Id(id);
    if (r == SP_OK && (len == 0 || !proposal || len > SYNC_PAYLOAD_MAX))
        r = sp_Error(SP_ERR_INVALID, "sync_Decide: a proposal takes 1 to %d bytes, not %zu",
                     SYNC_PAYLOAD_MAX, len);
    if (r != SP_OK)
        return r;
    snprintf(msg_id, sizeof msg_id, "%s.%s.%ld=%s", tok, topic, iteration, id);
    for (int i = 0; i < DECIDE_TRIES; i++) {
        int stored = 0, found = 0;
        if ((r = propose(c, tok, subj, msg_id, proposal, len, &stored)))
            break;
        if (stored) {
            *same = 1;
            return copy_Out(proposal, len, decided, decided_len);
        }
        if ((r = read_Decision(c, stream, subj, decided, decided_len, &found)) || found)
            break;
    }
    if (r == SP_OK && !*decided)
        r = sp_Error(SP_ERR_UNAVAILABLE, "sync_Decide: %s was refused as decided but no "
                     "decision is stored there", subj);
    return r ? sp_Wrap(r, "deciding %s/%s/%ld", job, topic, iteration) : SP_OK;
}

spStatus sync_ForgetDecisions(sync_conn *c, const char *job, const char *topic)
{
    char tok[SYNC_TOKEN_CAP], stream[SYNC_TOKEN_CAP + 8], subj[SYNC_SUBJECT_CAP];
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_ForgetDecisions: no connection");
    spStatus r = decision_Names(job, topic, 0, tok, stream, subj);
    if (r != SP_OK)
        return r;
    /* Decisions have one token after the topic; announcements have two. */
    snprintf(subj, sizeof subj, "spirt.%s.sync.%s.*", tok, topic);
    jsOptions o;
    jsOptions_Init(&o);
    o.Stream.Purge.Subject = subj;
    jsErrCode jerr = 0;
    natsStatus s = js_PurgeStream(c->js, stream, &o, &jerr);
    if (s == NATS_OK || jerr == JSStreamNotFoundErr)
        return SP_OK;
    return sync_Fail(c, s, jerr, "forgetting decisions");
}
