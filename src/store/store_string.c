/* store_string.c - short text values with a millisecond expiry: the join
 * step's single-use nonces and admission tickets (src/auth). */
#include <stdio.h>
#include <string.h>

#include "store/store_internal.h"

static spStatus string_Check(const char *key, const char *value, int ttl_ms)
{
    if (!key || !*key || !value)
        return sp_Error(SP_ERR_INVALID, "redis: empty key or NULL value");
    if (ttl_ms < 0)
        return sp_Error(SP_ERR_INVALID, "redis: negative ttl %d ms for '%s'", ttl_ms, key);
    return SP_OK;
}

/* SET key value [NX] [PX ttl_ms]: *set = 1 when written, 0 when NX found
 * the key already there (a nil reply). */
static spStatus string_Set(store *s, const char *key, const char *value, int ttl_ms, int nx,
                           int *set)
{
    spStatus st = string_Check(key, value, ttl_ms);
    if (st)
        return st;
    const char *argv[6] = {"SET", key, value};
    size_t lens[6] = {3, strlen(key), strlen(value)};
    char ms[16];
    int argc = 3;
    if (nx) {
        argv[argc] = "NX";
        lens[argc++] = 2;
    }
    if (ttl_ms > 0) {
        snprintf(ms, sizeof ms, "%d", ttl_ms);
        argv[argc] = "PX";
        lens[argc++] = 2;
        argv[argc] = ms;
        lens[argc++] = strlen(ms);
    }
    redisReply *r;
    if ((st = store_AppendArgv(s, argc, argv, lens)) || (st = store_Read(s, &r)))
        return st;
    if (r->type == REDIS_REPLY_STATUS)
        *set = 1;
    else if (nx && r->type == REDIS_REPLY_NIL)
        *set = 0;
    else
        st = sp_Wrap(store_Fail(s, r, "SET"), "storing '%s'", key);
    freeReplyObject(r);
    return st;
}

spStatus store_PutString(store *s, const char *key, const char *value, int ttl_ms)
{
    int set;
    return string_Set(s, key, value, ttl_ms, 0, &set);
}

spStatus store_PutStringIfAbsent(store *s, const char *key, const char *value, int ttl_ms,
                                 int *created)
{
    return string_Set(s, key, value, ttl_ms, 1, created);
}

spStatus store_GetString(store *s, const char *key, char *buf, size_t cap, size_t *len)
{
    if (!buf || cap == 0)
        return sp_Error(SP_ERR_INVALID, "redis: GET needs a buffer");
    buf[0] = 0;
    *len = 0;
    redisReply *r;
    spStatus st = store_GetValue(s, key, &r);
    if (st)
        return st;
    size_t n = r->len < cap - 1 ? r->len : cap - 1;
    memcpy(buf, r->str, n);
    buf[n] = 0;
    *len = r->len;
    freeReplyObject(r);
    return SP_OK;
}
