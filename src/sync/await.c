/* await.c - wait for a set of members' announcements of (topic, iteration).
 *
 * A core subscription delivers new announcements as they are published;
 * announcements made before the call are read from the job's stream (last
 * message per member subject). The waiter blocks on the next message with
 * the time left, so nothing polls. (An ordered JetStream consumer did the
 * same in one object, but libnats 3.4 could leave its NextMsg blocked past
 * the timeout when the server restarted mid-wait.)
 *
 * The lost wake-up this guards against: the server hands a published
 * announcement to the core subscribers it knows and stores it in the
 * stream as two separate acts, and under load the second can come
 * milliseconds after the first. A waiter that subscribed between them and
 * read the stream before the store saw it in neither place and slept until
 * its timeout, although the announcement had been made (a ScatterReduce
 * iteration of 30 s instead of 50 ms, once in thousands of waits). So the
 * subscription also covers the doorbell subject spirt.<J>.bell.<topic>.<t>.*
 * (sync.h), which an announcer rings only after the stream acknowledged
 * the store: a waiter that subscribed before the bell hears it, and one
 * that subscribed after it finds the announcement already stored when it
 * sweeps. */
#include "sync/sync_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void sync_ArrivalsFree(sync_arrival *a, int n)
{
    if (!a)
        return;
    for (int i = 0; i < n; i++) {
        free(a[i].payload);
        a[i].payload = NULL;
        a[i].len = 0;
    }
}

static spStatus check_args(const sync_conn *c, const int *members, int n, int timeout_ms,
                           const sync_arrival *out, const int *n_arrived)
{
    if (!c || !n_arrived || n < 0 || (n > 0 && (!members || !out)))
        return sp_Error(SP_ERR_INVALID, "sync_Await: missing connection, members or output");
    if (timeout_ms <= 0)
        return sp_Error(SP_ERR_INVALID, "sync_Await: timeout %d ms must be positive", timeout_ms);
    for (int i = 0; i < n; i++)
        if (members[i] < 0)
            return sp_Error(SP_ERR_INVALID, "sync_Await: member %d is negative", members[i]);
    return SP_OK;
}

/* Records msg for every listed slot of its member not filled yet; returns
 * how many slots it filled, or -1 when a payload copy fails. The first
 * announcement of a member wins (duplicates are retries of the same fact). */
static int record(natsMsg *msg, const int *members, int n, sync_arrival *out)
{
    int m = sync_SubjectMember(natsMsg_GetSubject(msg));
    if (m < 0)
        return 0;
    int filled = 0;
    for (int i = 0; i < n; i++) {
        if (members[i] != m || out[i].arrived)
            continue;
        int len = natsMsg_GetDataLength(msg);
        if (len > 0) {
            out[i].payload = malloc((size_t)len + 1);
            if (!out[i].payload)
                return -1;
            memcpy(out[i].payload, natsMsg_GetData(msg), (size_t)len);
            out[i].payload[len] = '\0';
            out[i].len = (size_t)len;
        }
        out[i].arrived = 1;
        filled++;
    }
    return filled;
}

typedef struct {
    sync_conn *c;
    const char *stream;      /* SPIRT_<J> */
    const char *prefix;      /* spirt.<J>.sync.<topic>.<t>. */
    const int *members;
    int n;
    sync_arrival *out;
    int *n_arrived;
} await_ctx;

/* Reads each missing member's stored announcement, if any, straight from
 * the stream: what was announced before we subscribed, or while we were
 * disconnected. */
static spStatus sweep(await_ctx *a)
{
    for (int i = 0; i < a->n; i++) {
        if (a->out[i].arrived)
            continue;
        char subject[SYNC_SUBJECT_CAP + 16];
        snprintf(subject, sizeof subject, "%s%d", a->prefix, a->members[i]);
        natsMsg *msg = NULL;
        jsErrCode jerr = 0;
        natsStatus s = js_GetLastMsg(&msg, a->c->js, a->stream, subject, NULL, &jerr);
        if (s == NATS_NOT_FOUND || jerr == JSNoMessageFoundErr || jerr == JSStreamNotFoundErr)
            continue; /* not announced (yet) */
        if (s != NATS_OK)
            return sync_Fail(a->c, s, jerr, "reading stored announcements");
        int got = record(msg, a->members, a->n, a->out);
        natsMsg_Destroy(msg);
        if (got < 0)
            return sp_Error(SP_ERR_NOMEM, "sync_Await: out of memory copying a payload");
        *a->n_arrived += got;
    }
    return SP_OK;
}

/* Collects live announcements until all slots are filled or the deadline
 * passes. Core subscriptions are restored by libnats after a reconnect, but
 * what was published while we were away is only in the stream: after a
 * reconnect the stream is swept again. */
static spStatus collect(await_ctx *a, natsSubscription *sub, long long deadline)
{
    uint64_t seen = sync_Reconnects(a->c);
    while (*a->n_arrived < a->n) {
        long long left = deadline - sync_NowMs();
        if (left <= 0)
            return SP_OK;
        natsMsg *msg = NULL;
        natsStatus s = natsSubscription_NextMsg(&msg, sub, left < 500 ? left : 500);
        if (s == NATS_TIMEOUT) {
            uint64_t now = sync_Reconnects(a->c);
            if (now != seen && natsConnection_Status(a->c->nc) == NATS_CONN_STATUS_CONNECTED) {
                spStatus r = sweep(a);
                if (r == SP_OK)
                    seen = now;
                else if (!sp_IsRetryable(r))
                    return r;
            }
            continue;
        }
        if (s == NATS_SLOW_CONSUMER)
            continue;
        if (s != NATS_OK)
            return sync_Fail(a->c, s, 0, "waiting for announcements");
        int got = record(msg, a->members, a->n, a->out);
        natsMsg_Destroy(msg);
        if (got < 0)
            return sp_Error(SP_ERR_NOMEM, "sync_Await: out of memory copying a payload");
        *a->n_arrived += got;
    }
    return SP_OK;
}

spStatus sync_Await(sync_conn *c, const char *job, const char *topic, long iteration,
                    const int *members, int n, int timeout_ms, sync_arrival *out,
                    int *n_arrived)
{
    long long deadline = sync_NowMs() + (timeout_ms > 0 ? timeout_ms : 0);
    if (n_arrived)
        *n_arrived = 0;
    for (int i = 0; out && members && i < n; i++)
        out[i] = (sync_arrival){.member = members[i]};
    spStatus r = check_args(c, members, n, timeout_ms, out, n_arrived);
    char tok[SYNC_TOKEN_CAP];
    if (r == SP_OK)
        r = sync_JobToken(job, tok, sizeof tok);
    if (r == SP_OK)
        r = sync_CheckTopic(topic);
    if (r == SP_OK && iteration < 0)
        r = sp_Error(SP_ERR_INVALID, "sync_Await: iteration %ld is negative", iteration);
    if (r != SP_OK || n == 0)
        return r;

    char stream[SYNC_TOKEN_CAP + 8], filter[SYNC_SUBJECT_CAP + 2], prefix[SYNC_SUBJECT_CAP];
    snprintf(stream, sizeof stream, "SPIRT_%s", tok);
    snprintf(prefix, sizeof prefix, "spirt.%s.sync.%s.%ld.", tok, topic, iteration);
    /* Announcements ("sync", as they are routed) and their doorbells
     * ("bell", once stored): nothing else has this shape. */
    snprintf(filter, sizeof filter, "spirt.%s.*.%s.%ld.*", tok, topic, iteration);

    /* Subscribe first and make sure the server has it, then read what is
     * already stored: an announcement lands in one or the other (or both;
     * record() counts a member once) - the doorbell sees to that (top of
     * the file). */
    /* The stream must exist before we subscribe: an announcer publishing to
     * a subject with no stream but with our plain subscriber would wait for
     * a JetStream ack that never comes. */
    r = sync_EnsureStreamOnce(c, tok);
    if (r != SP_OK)
        return sp_Wrap(r, "await %s/%s/%ld", job, topic, iteration);
    natsSubscription *sub = NULL;
    natsStatus s = natsConnection_SubscribeSync(&sub, c->nc, filter);
    if (s == NATS_OK)
        s = sync_Flush(c, timeout_ms);
    if (s != NATS_OK) {
        sync_Retire(c, sub);
        char what[SYNC_SUBJECT_CAP + 32];
        snprintf(what, sizeof what, "subscribing to %s", filter);
        return sync_Fail(c, s, 0, what);
    }
    await_ctx a = {c, stream, prefix, members, n, out, n_arrived};
    r = sweep(&a);
    if (r == SP_OK)
        r = collect(&a, sub, deadline);
    sync_Retire(c, sub);
    if (r != SP_OK) {
        sync_ArrivalsFree(out, n);
        for (int i = 0; i < n; i++)
            out[i].arrived = 0;
        *n_arrived = 0;
    }
    return r;
}
