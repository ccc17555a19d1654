/* store_conn.c - one hiredis connection: connect, AUTH, timeouts and byte
 * accounting (failures become statuses in store_errors.c).
 *
 * Only RESP2 is spoken (hiredis 0.14 cannot parse RESP3), so no HELLO is
 * ever sent. The context is blocking with SO_RCVTIMEO/SO_SNDTIMEO set by
 * redisSetTimeout, so a stalled server turns into SP_ERR_TIMEOUT instead of
 * a hang; after any I/O failure the context is dead and every later call
 * fails fast until store_Cached replaces it. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_internal.h"

#define STORE_DEFAULT_TIMEOUT_MS 5000

const char *store_Name(const store *s)
{
    static _Thread_local char buf[300];
    snprintf(buf, sizeof buf, "%s:%d", s->addr.host, s->addr.port);
    return buf;
}

/* Decimal digits of v, for the exact RESP size of a reply. */
static uint64_t digits(long long v)
{
    uint64_t n = v < 0 ? 2 : 1;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    while (u >= 10) {
        u /= 10;
        n++;
    }
    return n;
}

/* Bytes the server sent for this reply, recomputed from its RESP2 shape so
 * the count is exact without touching hiredis's reader internals. */
static uint64_t reply_Bytes(const redisReply *r)
{
    switch (r->type) {
    case REDIS_REPLY_STRING:
        return 1 + digits((long long)r->len) + 2 + r->len + 2;
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        return 1 + r->len + 2;
    case REDIS_REPLY_INTEGER:
        return 1 + digits(r->integer) + 2;
    case REDIS_REPLY_NIL:
        return 5;
    case REDIS_REPLY_ARRAY: {
        uint64_t n = 1 + digits((long long)r->elements) + 2;
        for (size_t i = 0; i < r->elements; i++)
            n += reply_Bytes(r->element[i]);
        return n;
    }
    }
    return 0;
}

static spStatus store_Dead(const store *s)
{
    if (!s || !s->c)
        return sp_Error(SP_ERR_INVALID, "redis: no connection");
    if (s->c->err)
        return sp_Error(SP_ERR_UNAVAILABLE, "redis %s: connection failed earlier: %s",
                        store_Name(s), s->c->errstr);
    return SP_OK;
}

static spStatus store_VAppend(store *s, const char *fmt, va_list ap)
{
    spStatus st = store_Dead(s);
    if (st != SP_OK)
        return st;
    size_t before = sdslen(s->c->obuf);
    if (redisvAppendCommand(s->c, fmt, ap) != REDIS_OK)
        return sp_Error(SP_ERR_NOMEM, "redis %s: cannot queue a command: %s", store_Name(s),
                        s->c->errstr);
    s->bytes_out += sdslen(s->c->obuf) - before;
    return SP_OK;
}

spStatus store_Append(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    spStatus st = store_VAppend(s, fmt, ap);
    va_end(ap);
    return st;
}

spStatus store_AppendArgv(store *s, int argc, const char **argv, const size_t *lens)
{
    spStatus st = store_Dead(s);
    if (st != SP_OK)
        return st;
    size_t before = sdslen(s->c->obuf);
    if (redisAppendCommandArgv(s->c, argc, argv, lens) != REDIS_OK)
        return sp_Error(SP_ERR_NOMEM, "redis %s: cannot queue a command: %s", store_Name(s),
                        s->c->errstr);
    s->bytes_out += sdslen(s->c->obuf) - before;
    return SP_OK;
}

void store_DropQueued(store *s)
{
    /* A blocking context writes its whole output buffer before it reads a
     * reply, so what the buffer holds now was queued since: none of it was
     * sent, and no reply to it will ever come. */
    if (s && s->c && s->c->obuf)
        sdsclear(s->c->obuf);
}

spStatus store_Read(store *s, redisReply **out)
{
    *out = NULL;
    spStatus st = store_Dead(s);
    if (st != SP_OK)
        return st;
    void *r = NULL;
    errno = 0;
    if (redisGetReply(s->c, &r) != REDIS_OK || !r) {
        if (r)
            freeReplyObject(r);
        return store_Fail(s, NULL, "command failed");
    }
    s->bytes_in += reply_Bytes(r);
    *out = r;
    return SP_OK;
}

spStatus store_ReadN(store *s, redisReply **replies, int n)
{
    for (int i = 0; i < n; i++)
        replies[i] = NULL;
    for (int i = 0; i < n; i++) {
        spStatus st = store_Read(s, &replies[i]);
        if (st != SP_OK) {
            store_FreeN(replies, i);
            return st;
        }
    }
    return SP_OK;
}

void store_FreeN(redisReply **replies, int n)
{
    for (int i = 0; i < n; i++) {
        if (replies[i])
            freeReplyObject(replies[i]);
        replies[i] = NULL;
    }
}

void store_KeepFirst(store_first *f, spStatus st)
{
    if (st != SP_OK && f->st == SP_OK) {
        f->st = st;
        snprintf(f->msg, sizeof f->msg, "%s", sp_LastError());
    }
}

spStatus store_FirstResult(const store_first *f)
{
    return f->st != SP_OK ? sp_Error(f->st, "%s", f->msg) : SP_OK;
}

spStatus store_Exec(store *s, redisReply **out, const char *fmt, ...)
{
    *out = NULL;
    va_list ap;
    va_start(ap, fmt);
    spStatus st = store_VAppend(s, fmt, ap);
    va_end(ap);
    if (st != SP_OK)
        return st;
    redisReply *r;
    if ((st = store_Read(s, &r)) != SP_OK)
        return st;
    if (r->type == REDIS_REPLY_ERROR) {
        /* The command name is the format's first word: enough context. */
        char what[32];
        snprintf(what, sizeof what, "%.*s", (int)strcspn(fmt, " "), fmt);
        st = store_Fail(s, r, what);
        freeReplyObject(r);
        return st;
    }
    *out = r;
    return SP_OK;
}

static spStatus store_Auth(store *s)
{
    const store_addr *a = &s->addr;
    if (!a->password[0])
        return SP_OK;
    redisReply *r = NULL;
    spStatus st = a->user[0] ? store_Append(s, "AUTH %s %s", a->user, a->password)
                             : store_Append(s, "AUTH %s", a->password);
    if (st == SP_OK)
        st = store_Read(s, &r);
    if (st != SP_OK)
        return st;
    /* A refusal of AUTH is a credentials problem whatever its code, unless
     * the server cannot serve anyone right now (LOADING...). */
    if (r->type == REDIS_REPLY_ERROR && sp_IsRetryable(store_StatusOfReply(r->str)))
        st = store_Fail(s, r, "AUTH");
    else if (r->type == REDIS_REPLY_ERROR)
        st = sp_Error(SP_ERR_AUTH, "redis %s: AUTH%s%s failed: %s", store_Name(s),
                      a->user[0] ? " as " : "", a->user, r->str);
    freeReplyObject(r);
    return st;
}

static spStatus addr_Check(const store_addr *a)
{
    if (!a || !a->host[0] || !memchr(a->host, '\0', sizeof a->host))
        return sp_Error(SP_ERR_INVALID, "redis: missing host");
    if (a->port <= 0 || a->port > 65535)
        return sp_Error(SP_ERR_INVALID, "redis %s: port %d out of range", a->host, a->port);
    if (a->timeout_ms < 0)
        return sp_Error(SP_ERR_INVALID, "redis %s:%d: negative timeout %d", a->host, a->port,
                        a->timeout_ms);
    return SP_OK;
}

/* hiredis writes with write(2): a server that vanished mid-pipeline would
 * otherwise kill the whole process with SIGPIPE instead of failing one
 * call with EPIPE. Only a default disposition is changed, never a handler
 * the program installed itself. */
static void sigpipe_Ignore(void)
{
    struct sigaction old;
    if (sigaction(SIGPIPE, NULL, &old) == 0 && old.sa_handler == SIG_DFL)
        signal(SIGPIPE, SIG_IGN);
}

spStatus store_Connect(const store_addr *a, store **out)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, sigpipe_Ignore);
    *out = NULL;
    spStatus st = addr_Check(a);
    if (st != SP_OK)
        return st;
    int ms = a->timeout_ms ? a->timeout_ms : STORE_DEFAULT_TIMEOUT_MS;
    struct timeval tv = {.tv_sec = ms / 1000, .tv_usec = (ms % 1000) * 1000};
    store *s = calloc(1, sizeof *s);
    if (!s)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    s->addr = *a;
    s->module = -1;
    errno = 0;
    s->c = redisConnectWithTimeout(a->host, a->port, tv);
    if (!s->c) {
        free(s);
        return sp_Error(SP_ERR_NOMEM, "redis %s:%d: cannot allocate a context", a->host, a->port);
    }
    if (s->c->err)
        st = store_Fail(s, NULL, "connect");
    else if (redisSetTimeout(s->c, tv) != REDIS_OK)
        st = store_Fail(s, NULL, "setting the command timeout");
    else
        st = store_Auth(s);
    if (st != SP_OK) {
        store_Destroy(s);
        return st;
    }
    *out = s;
    return SP_OK;
}

void store_Destroy(store *s)
{
    if (!s)
        return;
    if (s->c)
        redisFree(s->c);
    free(s);
}

int store_IsBroken(const store *s) { return !s->c || s->c->err != 0; }

spStatus store_Ping(store *s)
{
    redisReply *r;
    spStatus st = store_Exec(s, &r, "PING");
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_STATUS || strcmp(r->str, "PONG") != 0)
        st = store_Fail(s, r, "PING");
    freeReplyObject(r);
    return st;
}

int store_HasModule(store *s)
{
    if (s->module >= 0)
        return s->module;
    redisReply *r;
    spStatus st = store_Exec(s, &r, "COMMAND INFO spirt.avg");
    if (st != SP_OK) {
        /* A dead connection says nothing about the server: ask again later.
         * A refused COMMAND (ACL) means use the portable path. */
        if (!store_IsBroken(s))
            s->module = 0;
        return 0;
    }
    /* One entry per name asked: an array for a known command, nil if not. */
    s->module = r->type == REDIS_REPLY_ARRAY && r->elements == 1 &&
                r->element[0]->type == REDIS_REPLY_ARRAY;
    freeReplyObject(r);
    return s->module;
}

uint64_t store_BytesOut(const store *s) { return s ? s->bytes_out : 0; }
uint64_t store_BytesIn(const store *s) { return s ? s->bytes_in : 0; }

spStatus store_ExecArgv(store *s, int argc, const char *const *argv, redisReply **out)
{
    size_t lens[16];
    redisReply *r;
    *out = NULL;
    if (argc < 1 || argc > 16)
        return sp_Error(SP_ERR_INVALID, "redis: %d arguments", argc);
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    spStatus st = store_AppendArgv(s, argc, (const char **)argv, lens);
    if (st != SP_OK || (st = store_Read(s, &r)) != SP_OK)
        return st;
    if (r->type == REDIS_REPLY_ERROR) {
        st = store_Fail(s, r, argv[0]);
        freeReplyObject(r);
        return st;
    }
    *out = r;
    return SP_OK;
}
