/* store_errors.c - the one mapping from a Redis failure to an spStatus.
 *
 * Every store call that fails on the Redis side ends here, so a given
 * server answer means the same status (and so the same HTTP code and retry
 * decision) whichever step or command met it. Two kinds of failure:
 *
 *  - the connection failed (hiredis returned no reply; the context is dead):
 *    a timeout is SP_ERR_TIMEOUT, anything else SP_ERR_UNAVAILABLE - both
 *    retryable, since store_Cached reconnects on the next call;
 *  - the server answered with an error reply: its first word is the error
 *    code (RESP convention), looked up in reply_codes below; the spirt
 *    module's own "ERR spirt: <phrase>" errors are looked up by phrase in
 *    module_phrases. Whatever is in neither table is SP_ERR_INTERNAL: a
 *    command spirt sent wrongly, which retrying cannot fix.
 *
 * src/sync/conn.c does the same for NATS (status_for + sync_Fail). */
#include <errno.h>
#include <string.h>

#include "store/store_internal.h"

typedef struct {
    const char *code;
    spStatus st;
} reply_code;

/* Error codes of Redis itself, matched as the whole first word (so BUSYKEY
 * or BUSYGROUP are not BUSY). */
static const reply_code reply_codes[] = {
    /* The server is there but cannot serve now: retry with backoff. */
    {"LOADING", SP_ERR_UNAVAILABLE},     /* reading its dataset after a restart */
    {"BUSY", SP_ERR_UNAVAILABLE},        /* a script or module command runs long */
    {"MASTERDOWN", SP_ERR_UNAVAILABLE},  /* replica lost its primary */
    {"TRYAGAIN", SP_ERR_UNAVAILABLE},    /* cluster slot migration */
    {"CLUSTERDOWN", SP_ERR_UNAVAILABLE},
    {"OOM", SP_ERR_UNAVAILABLE},         /* maxmemory reached: iteration keys expire */
    {"MISCONF", SP_ERR_UNAVAILABLE},     /* writes refused until a snapshot succeeds */
    {"READONLY", SP_ERR_UNAVAILABLE},    /* a replica, e.g. during a failover */
    {"NOREPLICAS", SP_ERR_UNAVAILABLE},  /* min-replicas-to-write not met */
    /* Credentials: retrying with the same ones cannot help. */
    {"NOAUTH", SP_ERR_AUTH},
    {"WRONGPASS", SP_ERR_AUTH},
    {"NOPERM", SP_ERR_AUTH},
    /* A key of another type (a list where a tensor should be): bad input. */
    {"WRONGTYPE", SP_ERR_INVALID},
};

/* The spirt module's errors are "<CODE> spirt: <phrase>...", and every
 * message of redis-module/ starts with one of these phrases (see mod_SetErr
 * in redis-module/mod_tensor.h). They are the module's verdicts on its
 * input, so they map like the client-side checks of the same things
 * (store_CheckTensor) and a test can expect one status on both paths. */
#define MODULE_PREFIX "ERR spirt: "
static const reply_code module_phrases[] = {
    {"no such key", SP_ERR_NOT_FOUND},
    {"corrupt tensor", SP_ERR_FORMAT},
    {"wrong dtype", SP_ERR_INVALID},
    {"size mismatch", SP_ERR_INVALID},
    {"not finite", SP_ERR_INVALID},
    {"bad argument", SP_ERR_INVALID},
    {"corrupt marker", SP_ERR_FORMAT},  /* SPIRT.UPDATE ... MARK */
    {"stale", SP_ERR_CONFLICT},         /* ... an iteration older than the marker's */
};

/* The server refused a new connection for load: as retryable as LOADING. */
static const char *const busy_errs[] = {"ERR max number of clients reached"};

static int has_prefix(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

spStatus store_StatusOfReply(const char *err)
{
    const char *e = err ? err : "";
    size_t word = strcspn(e, " ");
    for (size_t i = 0; i < sizeof reply_codes / sizeof *reply_codes; i++)
        if (strlen(reply_codes[i].code) == word && strncmp(e, reply_codes[i].code, word) == 0)
            return reply_codes[i].st;
    if (has_prefix(e, MODULE_PREFIX)) {
        const char *phrase = e + strlen(MODULE_PREFIX);
        for (size_t i = 0; i < sizeof module_phrases / sizeof *module_phrases; i++)
            if (has_prefix(phrase, module_phrases[i].code))
                return module_phrases[i].st;
    }
    for (size_t i = 0; i < sizeof busy_errs / sizeof *busy_errs; i++)
        if (has_prefix(e, busy_errs[i]))
            return SP_ERR_UNAVAILABLE;
    return SP_ERR_INTERNAL;
}

spStatus store_StatusOfConn(int err, int errno_val, const char *errstr)
{
    const char *m = errstr ? errstr : "";
    switch (err) {
    case REDIS_ERR_EOF: /* the server closed the connection */
        return SP_ERR_UNAVAILABLE;
    case REDIS_ERR_OOM:
        return SP_ERR_NOMEM;
    case REDIS_ERR_PROTOCOL: /* not RESP: not a Redis server, or a bug */
        return SP_ERR_INTERNAL;
#ifdef REDIS_ERR_TIMEOUT /* hiredis >= 1.0 reports timeouts by code */
    case REDIS_ERR_TIMEOUT:
        return SP_ERR_TIMEOUT;
#endif
    case REDIS_ERR_IO:
        /* SO_RCVTIMEO expiring shows as EAGAIN; a connect timeout as
         * ETIMEDOUT. hiredis keeps strerror() of it in errstr, which also
         * covers a caller whose errno was overwritten since. */
        if (errno_val == EAGAIN || errno_val == EWOULDBLOCK || errno_val == ETIMEDOUT ||
            errno_val == EINPROGRESS || strstr(m, "timed out") ||
            strstr(m, "temporarily unavailable"))
            return SP_ERR_TIMEOUT;
        return SP_ERR_UNAVAILABLE;
    default: /* refused, reset, name resolution (REDIS_ERR_OTHER) */
        return SP_ERR_UNAVAILABLE;
    }
}

spStatus store_Fail(const store *s, const redisReply *r, const char *what)
{
    if (!r) {
        const redisContext *c = s ? s->c : NULL;
        if (!c)
            return sp_Error(SP_ERR_UNAVAILABLE, "redis %s: %s: no connection",
                            s ? store_Name(s) : "?", what);
        int saved = errno;
        spStatus st = store_StatusOfConn(c->err, saved, c->errstr);
        return sp_Error(st, "redis %s: %s: %s%s", store_Name(s), what,
                        c->errstr[0] ? c->errstr : "connection failed",
                        st == SP_ERR_TIMEOUT ? " (timeout)" : "");
    }
    if (r->type != REDIS_REPLY_ERROR)
        return sp_Error(SP_ERR_INTERNAL, "redis %s: %s: unexpected reply type %d",
                        store_Name(s), what, r->type);
    const char *m = r->str ? r->str : "";
    return sp_Error(store_StatusOfReply(m), "redis %s: %s: %s", store_Name(s), what, m);
}
