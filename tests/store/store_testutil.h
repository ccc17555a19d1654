/* store_testutil.h - helpers shared by the store and module tests. */
#ifndef SPIRT_STORE_TESTUTIL_H
#define SPIRT_STORE_TESTUTIL_H

#include <hiredis/hiredis.h>
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/rng.h"
#include "core/wire.h"
#include "fixture.h"
#include "store/store.h"
/* White-box: tests plant bad data and read TTLs with commands the store API
 * deliberately lacks, on the store's own connection. */
#include "store/store_internal.h"

static inline redisContext *tu_Raw(store *s) { return s->c; }

static inline void tu_Addr(store_addr *a, const fx_server *srv, const char *password)
{
    memset(a, 0, sizeof *a);
    strcpy(a->host, "127.0.0.1");
    a->port = srv->port;
    if (password)
        snprintf(a->password, sizeof a->password, "%s", password);
    a->timeout_ms = 5000;
}

static inline store *tu_Connect(const fx_server *srv, const char *password)
{
    store_addr a;
    tu_Addr(&a, srv, password);
    store *s = NULL;
    spStatus st = store_Connect(&a, &s);
    if (st != SP_OK)
        fail_msg("connect: %s", sp_LastError());
    return s;
}

/* n deterministic values in [-scale, scale). */
static inline float *tu_Random(size_t n, uint64_t seed, float scale)
{
    rng r;
    rng_Seed(&r, seed, 7);
    float *x = malloc(n * sizeof *x + 1);
    assert_non_null(x);
    for (size_t i = 0; i < n; i++)
        x[i] = (2.0f * rng_Uniform(&r) - 1.0f) * scale;
    return x;
}

static inline void tu_PutOk(store *s, const char *key, const float *x, size_t n, int ttl)
{
    spStatus st = store_PutTensor(s, key, x, n, ttl);
    if (st != SP_OK)
        fail_msg("put %s: %s", key, sp_LastError());
}

static inline float *tu_GetOk(store *s, const char *key, size_t n)
{
    float *x = NULL;
    size_t got = 0;
    spStatus st = store_GetTensor(s, key, n, &x, &got);
    if (st != SP_OK)
        fail_msg("get %s: %s", key, sp_LastError());
    assert_int_equal(got, n);
    return x;
}

/* A raw command outside the store API (to plant bad data, read TTLs). */
static inline redisReply *tu_Cmd(store *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(tu_Raw(s), fmt, ap);
    va_end(ap);
    assert_non_null(r);
    return r;
}

static inline long long tu_Int(store *s, const char *fmt, const char *key)
{
    redisReply *r = tu_Cmd(s, fmt, key);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

#endif
