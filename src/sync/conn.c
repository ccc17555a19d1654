/* conn.c - NATS connections for sync: connect with reconnect-forever options,
 * the process-wide cache, ping, and mapping of libnats errors to spStatus. */
#include "sync/sync_internal.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SYNC_DEFAULT_TIMEOUT_MS 5000
/* Reconnect "forever": a NATS restart mid-job must be survived, and every
 * call is bounded by its own timeout anyway. libnats wants a positive count. */
#define SYNC_RECONNECTS 1000000000
#define SYNC_RECONNECT_WAIT_MS 250
/* Detect a silently dead server (no FIN, e.g. a vanished pod) within ~15 s. */
#define SYNC_PING_INTERVAL_MS 5000
#define SYNC_MAX_PINGS_OUT 3

/* Copies url without any "user:pass@" part, so messages never show secrets. */
static void redact_url(const char *url, char *out, size_t cap)
{
    const char *scheme = strstr(url, "://");
    const char *host = scheme ? scheme + 3 : url;
    const char *at = strchr(host, '@');
    const char *slash = strchr(host, '/');
    if (at && (!slash || at < slash))
        snprintf(out, cap, "%.*s%s", (int)(host - url), url, at + 1);
    else
        snprintf(out, cap, "%s", url);
}

static spStatus status_for(const sync_conn *c, natsStatus s, jsErrCode jerr)
{
    switch (s) {
    case NATS_NO_SERVER:
    case NATS_CONNECTION_CLOSED:
    case NATS_CONNECTION_DISCONNECTED:
    case NATS_IO_ERROR:
    case NATS_STALE_CONNECTION:
    case NATS_NOT_YET_CONNECTED:
    case NATS_NO_RESPONDERS:
    case NATS_INSUFFICIENT_BUFFER: /* reconnect buffer full: server away too long */
        return SP_ERR_UNAVAILABLE;
    case NATS_TIMEOUT:
        /* Unanswered while disconnected means "server away", not "slow". */
        if (c && c->nc && natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED)
            return SP_ERR_UNAVAILABLE;
        return SP_ERR_TIMEOUT;
    case NATS_CONNECTION_AUTH_FAILED:
    case NATS_NOT_PERMITTED:
        return SP_ERR_AUTH;
    case NATS_NO_MEMORY:
        return SP_ERR_NOMEM;
    case NATS_INVALID_ARG:
    case NATS_INVALID_SUBJECT:
    case NATS_ADDRESS_MISSING:
    case NATS_MAX_PAYLOAD:
        return SP_ERR_INVALID;
    default:
        break;
    }
    switch ((int)jerr) {
    case JSStreamNotFoundErr:
    case JSConsumerNotFoundErr:
        return SP_ERR_NOT_FOUND;
    case JSStreamSubjectOverlapErr:
    case JSStreamNameExistErr:
        return SP_ERR_CONFLICT;
    case JSNotEnabledErr:
    case JSNotEnabledForAccountErr:
    case JSInsufficientResourcesErr:
    case JSStorageResourcesExceededErr:
        return SP_ERR_UNAVAILABLE;
    case JSStreamMessageExceedsMaximumErr:
        return SP_ERR_TOO_LARGE;
    default:
        return s == NATS_NOT_FOUND ? SP_ERR_NOT_FOUND : SP_ERR_INTERNAL;
    }
}

spStatus sync_Fail(const sync_conn *c, natsStatus s, jsErrCode jerr, const char *what)
{
    const char *detail = nats_GetLastError(NULL);
    const char *text = natsStatus_GetText(s);
    int show = detail && detail[0] && !strstr(detail, text);
    char extra[64] = "";
    if (jerr)
        snprintf(extra, sizeof extra, " (JetStream error %d)", (int)jerr);
    else if (c && c->nc && natsConnection_Status(c->nc) != NATS_CONN_STATUS_CONNECTED)
        snprintf(extra, sizeof extra, " (server unreachable, reconnecting)");
    return sp_Error(status_for(c, s, jerr), "NATS %s: %s failed: %s%s%s%s",
                    c ? c->url : "?", what, text, show ? ": " : "", show ? detail : "", extra);
}

static natsStatus set_options(natsOptions *o, const sync_addr *a, int timeout_ms)
{
    natsStatus s = natsOptions_SetURL(o, a->url);
    if (s == NATS_OK && a->user[0])
        s = natsOptions_SetUserInfo(o, a->user, a->password);
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(o, timeout_ms);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(o, true);
    if (s == NATS_OK)
        s = natsOptions_SetMaxReconnect(o, SYNC_RECONNECTS);
    if (s == NATS_OK)
        s = natsOptions_SetReconnectWait(o, SYNC_RECONNECT_WAIT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetPingInterval(o, SYNC_PING_INTERVAL_MS);
    if (s == NATS_OK)
        s = natsOptions_SetMaxPingsOut(o, SYNC_MAX_PINGS_OUT);
    return s;
}

static spStatus check_addr(const sync_addr *a)
{
    if (!a)
        return sp_Error(SP_ERR_INVALID, "sync: no NATS address given");
    if (!memchr(a->url, '\0', sizeof a->url) || !memchr(a->user, '\0', sizeof a->user) ||
        !memchr(a->password, '\0', sizeof a->password))
        return sp_Error(SP_ERR_INVALID, "sync: NATS address fields are not NUL-terminated");
    if (!a->url[0])
        return sp_Error(SP_ERR_INVALID, "sync: NATS url is empty");
    if (a->timeout_ms < 0)
        return sp_Error(SP_ERR_INVALID, "sync: NATS timeout %d ms is negative", a->timeout_ms);
    return SP_OK;
}

spStatus sync_Connect(const sync_addr *a, sync_conn **out)
{
    if (!out)
        return sp_Error(SP_ERR_INVALID, "sync_Connect: out is NULL");
    *out = NULL;
    spStatus r = check_addr(a);
    if (r != SP_OK)
        return r;
    sync_conn *c = calloc(1, sizeof *c);
    if (!c)
        return sp_Error(SP_ERR_NOMEM, "sync_Connect: out of memory");
    c->timeout_ms = a->timeout_ms ? a->timeout_ms : SYNC_DEFAULT_TIMEOUT_MS;
    redact_url(a->url, c->url, sizeof c->url);
    pthread_mutex_init(&c->retired_mu, NULL);

    natsOptions *o = NULL;
    natsStatus s = natsOptions_Create(&o);
    if (s == NATS_OK)
        s = set_options(o, a, c->timeout_ms);
    if (s == NATS_OK)
        s = natsConnection_Connect(&c->nc, o);
    natsOptions_Destroy(o);
    if (s == NATS_OK) {
        jsOptions jo;
        jsOptions_Init(&jo);
        jo.Wait = c->timeout_ms;
        s = natsConnection_JetStream(&c->js, c->nc, &jo);
    }
    if (s != NATS_OK) {
        if (s == NATS_NO_SERVER)
            r = sp_Error(SP_ERR_UNAVAILABLE, "NATS %s: no server answers there (%s)", c->url,
                         nats_GetLastError(NULL));
        else if (s == NATS_CONNECTION_AUTH_FAILED || s == NATS_NOT_PERMITTED)
            r = sp_Error(SP_ERR_AUTH, "NATS %s: server rejected the credentials of user '%s'",
                         c->url, a->user[0] ? a->user : "(none)");
        else
            r = sync_Fail(c, s, 0, "connect");
        sync_Destroy(c);
        return r;
    }
    *out = c;
    return SP_OK;
}

void sync_Destroy(sync_conn *c)
{
    if (!c)
        return;
    jsCtx_Destroy(c->js);
    if (c->nc)
        natsConnection_Close(c->nc);
    /* The read loop has stopped: nothing can touch these any more. */
    for (int i = 0; i < c->n_retired; i++)
        natsSubscription_Destroy(c->retired[i]);
    free(c->retired);
    pthread_mutex_destroy(&c->retired_mu);
    natsConnection_Destroy(c->nc);
    free(c);
}

uint64_t sync_Reconnects(sync_conn *c)
{
    natsStatistics *st = NULL;
    uint64_t r = 0;
    if (natsStatistics_Create(&st) == NATS_OK && natsConnection_GetStats(c->nc, st) == NATS_OK)
        natsStatistics_GetCounts(st, NULL, NULL, NULL, NULL, &r);
    natsStatistics_Destroy(st);
    return r;
}

void sync_Retire(sync_conn *c, natsSubscription *sub)
{
    if (!sub)
        return;
    natsSubscription_Unsubscribe(sub);
    pthread_mutex_lock(&c->retired_mu);
    if (c->n_retired == c->cap_retired) {
        int cap = c->cap_retired ? 2 * c->cap_retired : 8;
        natsSubscription **grown = realloc(c->retired, (size_t)cap * sizeof *grown);
        if (grown) {
            c->retired = grown;
            c->cap_retired = cap;
        }
    }
    /* Out of memory: leaking one subscription beats a use-after-free. */
    if (c->n_retired < c->cap_retired)
        c->retired[c->n_retired++] = sub;
    pthread_mutex_unlock(&c->retired_mu);
}

natsStatus sync_Flush(sync_conn *c, int timeout_ms)
{
    /* Only those retired before the flush is sent are safe after it. */
    pthread_mutex_lock(&c->retired_mu);
    natsSubscription **old = c->retired;
    int n = c->n_retired;
    c->retired = NULL;
    c->n_retired = c->cap_retired = 0;
    pthread_mutex_unlock(&c->retired_mu);
    natsStatus s = natsConnection_FlushTimeout(c->nc, timeout_ms);
    for (int i = 0; i < n; i++) {
        if (s == NATS_OK)
            natsSubscription_Destroy(old[i]);
        else
            sync_Retire(c, old[i]); /* unanswered: keep them for the next flush */
    }
    free(old);
    return s;
}

spStatus sync_Ping(sync_conn *c)
{
    if (!c)
        return sp_Error(SP_ERR_INVALID, "sync_Ping: no connection");
    natsStatus s = sync_Flush(c, c->timeout_ms);
    return s == NATS_OK ? SP_OK : sync_Fail(c, s, 0, "ping");
}

/* ---- process-wide cache ------------------------------------------------- */

typedef struct cache_entry {
    sync_addr addr;
    sync_conn *conn;
    struct cache_entry *next;
} cache_entry;

static pthread_mutex_t cache_mu = PTHREAD_MUTEX_INITIALIZER;
static cache_entry *cache_head;

static int same_addr(const sync_addr *x, const sync_addr *y)
{
    return strcmp(x->url, y->url) == 0 && strcmp(x->user, y->user) == 0 &&
           strcmp(x->password, y->password) == 0;
}

/* A connection is only ever closed for good by libnats when reconnecting is
 * impossible (e.g. credentials revoked); such entries are skipped, not freed,
 * because other threads may still hold them. */
spStatus sync_Cached(const sync_addr *a, sync_conn **out)
{
    if (!out)
        return sp_Error(SP_ERR_INVALID, "sync_Cached: out is NULL");
    *out = NULL;
    spStatus r = check_addr(a);
    if (r != SP_OK)
        return r;
    pthread_mutex_lock(&cache_mu);
    for (cache_entry *e = cache_head; e; e = e->next) {
        if (same_addr(&e->addr, a) && !natsConnection_IsClosed(e->conn->nc)) {
            *out = e->conn;
            pthread_mutex_unlock(&cache_mu);
            return SP_OK;
        }
    }
    cache_entry *e = calloc(1, sizeof *e);
    if (!e) {
        pthread_mutex_unlock(&cache_mu);
        return sp_Error(SP_ERR_NOMEM, "sync_Cached: out of memory");
    }
    /* Connecting under the lock keeps two threads from opening two
     * connections to the same server; it is bounded by the connect timeout. */
    r = sync_Connect(a, &e->conn);
    if (r != SP_OK) {
        free(e);
        pthread_mutex_unlock(&cache_mu);
        return r;
    }
    e->addr = *a;
    e->next = cache_head;
    cache_head = e;
    *out = e->conn;
    pthread_mutex_unlock(&cache_mu);
    return SP_OK;
}

void sync_CachedCloseAll(void)
{
    pthread_mutex_lock(&cache_mu);
    cache_entry *e = cache_head;
    cache_head = NULL;
    pthread_mutex_unlock(&cache_mu);
    while (e) {
        cache_entry *next = e->next;
        sync_Destroy(e->conn);
        memset(e->addr.password, 0, sizeof e->addr.password);
        free(e);
        e = next;
    }
}
