/* store_tensor.c - tensors and blobs: SET/GET with validation on the way
 * back, and the pipelined multi-get the aggregation steps use. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/tensor.h"
#include "core/wire.h"
#include "core/crc32c.h"
#include "store/store_direct.h"

static spStatus check_Key(const char *key)
{
    if (!key || !*key)
        return sp_Error(SP_ERR_INVALID, "redis: empty key");
    return SP_OK;
}

spStatus store_ReplyWire(const store *s, const char *key, const redisReply *r, wire_view *v)
{
    if (r->type == REDIS_REPLY_NIL)
        return sp_Error(SP_ERR_NOT_FOUND, "redis %s: no such key '%s'", store_Name(s), key);
    if (r->type != REDIS_REPLY_STRING)
        return store_Fail(s, r, "GET");
    spStatus st = wire_Parse((const uint8_t *)r->str, r->len, v);
    return st ? sp_Wrap(st, "redis %s: corrupt tensor at '%s'", store_Name(s), key) : SP_OK;
}

spStatus store_CheckTensor(const store *s, const char *key, const redisReply *r,
                           uint64_t expect_n, uint64_t *count)
{
    wire_view v;
    spStatus st = store_ReplyWire(s, key, r, &v);
    if (st != SP_OK)
        return st;
    if (v.dtype != WIRE_F32)
        return sp_Error(SP_ERR_INVALID, "redis %s: key '%s' holds dtype %d, not float32",
                        store_Name(s), key, (int)v.dtype);
    if (expect_n && v.count != expect_n)
        return sp_Error(SP_ERR_INVALID, "redis %s: key '%s' holds %llu elements, expected %llu",
                        store_Name(s), key, (unsigned long long)v.count,
                        (unsigned long long)expect_n);
    *count = v.count;
    return SP_OK;
}

spStatus store_CopyTensor(const store *s, const char *key, const redisReply *r, float *out,
                          uint64_t n, int reject_nonfinite)
{
    const uint8_t *p = (const uint8_t *)r->str + WIRE_HEADER_SIZE;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(out, p, (size_t)n * sizeof(float));
#else
    for (uint64_t i = 0; i < n; i++) {
        uint32_t w = (uint32_t)p[4 * i] | (uint32_t)p[4 * i + 1] << 8 |
                     (uint32_t)p[4 * i + 2] << 16 | (uint32_t)p[4 * i + 3] << 24;
        memcpy(&out[i], &w, 4);
    }
#endif
    if (reject_nonfinite && !tensor_AllFinite((size_t)n, out)) {
        uint64_t i = 0;
        while (i < n && isfinite(out[i]))
            i++;
        return sp_Error(SP_ERR_INVALID, "redis %s: key '%s' has a non-finite value at index %llu",
                        store_Name(s), key, (unsigned long long)i);
    }
    return SP_OK;
}

spStatus store_PutBlob(store *s, const char *key, const void *data, size_t len, int ttl_s)
{
    spStatus st = check_Key(key);
    if (st != SP_OK)
        return st;
    if (ttl_s < 0)
        return sp_Error(SP_ERR_INVALID, "redis: negative ttl %d for '%s'", ttl_s, key);
    if (!data && len)
        return sp_Error(SP_ERR_INVALID, "redis: NULL data for '%s'", key);
    if (direct_Usable(s))
        return direct_Set(s, key, data, len, NULL, 0, ttl_s, 0);
    redisReply *r;
    const char *d = data ? data : "";
    if (ttl_s > 0)
        st = store_Exec(s, &r, "SET %b %b EX %d", key, strlen(key), d, len, ttl_s);
    else
        st = store_Exec(s, &r, "SET %b %b", key, strlen(key), d, len);
    if (st != SP_OK)
        return sp_Wrap(st, "storing '%s'", key);
    if (r->type != REDIS_REPLY_STATUS)
        st = store_Fail(s, r, "SET");
    freeReplyObject(r);
    return st;
}

/* A tensor straight from the caller's floats: a 24-byte header and the
 * floats themselves go out with one writev; otherwise it is encoded into a
 * blob first. */
static spStatus tensor_Put(store *s, const char *key, const float *x, size_t n, int ttl_s,
                           int keepttl)
{
    spStatus st = check_Key(key);
    if (st != SP_OK)
        return st;
    if (ttl_s < 0)
        return sp_Error(SP_ERR_INVALID, "redis: negative ttl %d for '%s'", ttl_s, key);
    if (n > WIRE_MAX_COUNT || (n && !x))
        return sp_Error(SP_ERR_INVALID, "redis: bad tensor of %zu floats for '%s'", n, key);
    if (direct_Usable(s)) {
        uint8_t hdr[WIRE_HEADER_SIZE];
        wire_PutHeader(hdr, WIRE_F32, n, crc32c(0, x, n * sizeof *x), 0);
        return direct_Set(s, key, hdr, sizeof hdr, x, n * sizeof *x, ttl_s, keepttl);
    }
    uint8_t *blob;
    size_t len;
    if ((st = wire_Encode(WIRE_F32, x, n, 0, &blob, &len)) != SP_OK)
        return sp_Wrap(st, "encoding '%s'", key);
    if (!keepttl) {
        st = store_PutBlob(s, key, blob, len, ttl_s);
        free(blob);
        return st;
    }
    redisReply *r;
    st = store_Exec(s, &r, "SET %b %b KEEPTTL", key, strlen(key), blob, len);
    free(blob);
    if (st != SP_OK)
        return sp_Wrap(st, "storing '%s'", key);
    if (r->type != REDIS_REPLY_STATUS)
        st = store_Fail(s, r, "SET");
    freeReplyObject(r);
    return st;
}

spStatus store_PutTensor(store *s, const char *key, const float *x, size_t n, int ttl_s)
{
    return tensor_Put(s, key, x, n, ttl_s, 0);
}

spStatus store_PutTensorKeepTtl(store *s, const char *key, const float *x, size_t n)
{
    return tensor_Put(s, key, x, n, 0, 1);
}

spStatus store_GetValue(store *s, const char *key, redisReply **out)
{
    redisReply *r;
    spStatus st = check_Key(key);
    if (st == SP_OK)
        st = store_Exec(s, &r, "GET %b", key, strlen(key));
    if (st != SP_OK)
        return st;
    if (r->type == REDIS_REPLY_NIL)
        st = sp_Error(SP_ERR_NOT_FOUND, "redis %s: key '%s' not found", store_Name(s), key);
    else if (r->type != REDIS_REPLY_STRING)
        st = store_Fail(s, r, "GET");
    if (st != SP_OK) {
        freeReplyObject(r);
        return st;
    }
    *out = r;
    return SP_OK;
}

spStatus store_GetBlob(store *s, const char *key, uint8_t **out, size_t *len)
{
    redisReply *r;
    spStatus st = store_GetValue(s, key, &r);
    if (st != SP_OK)
        return st;
    /* hiredis 0.14 allocates reply strings with malloc: hand the buffer
     * over instead of copying a multi-megabyte value. */
    *out = (uint8_t *)r->str;
    *len = r->len;
    r->str = NULL;
    r->len = 0;
    freeReplyObject(r);
    return SP_OK;
}

static float *dest_Alloc(void *ctx, uint64_t n)
{
    float **out = ctx;
    *out = malloc(n ? (size_t)n * sizeof(float) : 1);
    return *out;
}

static float *dest_Given(void *ctx, uint64_t n)
{
    (void)n;
    return ctx;
}

spStatus store_GetTensor(store *s, const char *key, size_t expect_n, float **out, size_t *n)
{
    spStatus st = check_Key(key);
    if (st != SP_OK)
        return st;
    float *x = NULL;
    uint64_t count = 0;
    if (direct_Usable(s)) {
        direct_in d;
        if ((st = store_Append(s, "GET %b", key, strlen(key))) != SP_OK ||
            (st = direct_Flush(s, "GET")) != SP_OK)
            return st;
        direct_InInit(&d, s);
        st = direct_GetTensor(&d, key, expect_n, dest_Alloc, &x, &count);
        direct_InDone(&d);
    } else {
        redisReply *r;
        if ((st = store_GetValue(s, key, &r)) != SP_OK)
            return st;
        st = store_CheckTensor(s, key, r, expect_n, &count);
        if (st == SP_OK && !(x = malloc(count ? (size_t)count * sizeof *x : 1)))
            st = sp_Error(SP_ERR_NOMEM, "redis: cannot allocate %llu floats for '%s'",
                          (unsigned long long)count, key);
        if (st == SP_OK)
            st = store_CopyTensor(s, key, r, x, count, 1);
        freeReplyObject(r);
    }
    if (st != SP_OK) {
        free(x);
        return st;
    }
    *out = x;
    *n = (size_t)count;
    return SP_OK;
}

spStatus store_GetTensorsInto(store *s, const char *const *keys, int k, size_t expect_n,
                              float *const *outs, int *ok)
{
    if (k < 0 || (k > 0 && (!keys || !outs)))
        return sp_Error(SP_ERR_INVALID, "redis: bad multi-get arguments (k=%d)", k);
    for (int i = 0; i < k; i++) {
        spStatus st = check_Key(keys[i]);
        if (st != SP_OK)
            return st;
        if (ok)
            ok[i] = 0;
    }
    /* All GETs go out in one write; replies are read back in order. */
    int direct = direct_Usable(s);
    for (int i = 0; i < k; i++) {
        spStatus st = store_Append(s, "GET %b", keys[i], strlen(keys[i]));
        if (st != SP_OK) {
            store_DropQueued(s);
            return st;
        }
    }
    store_first first = {0};
    if (direct) {
        spStatus st = direct_Flush(s, "GET");
        if (st != SP_OK)
            return st;
        direct_in d;
        direct_InInit(&d, s);
        for (int i = 0; i < k; i++) {
            uint64_t count = 0;
            /* expect_n == 0 asks for empty tensors; 0 to the reader means "any". */
            st = direct_GetTensor(&d, keys[i], expect_n, dest_Given, outs[i], &count);
            if (st == SP_OK && count != expect_n)
                st = sp_Error(SP_ERR_INVALID, "redis %s: key '%s' holds %llu elements, "
                              "expected %zu", store_Name(s), keys[i],
                              (unsigned long long)count, expect_n);
            if (store_IsBroken(s))
                return st; /* connection gone: the rest of the replies with it */
            if (ok)
                ok[i] = st == SP_OK;
            store_KeepFirst(&first, st);
        }
        direct_InDone(&d);
        st = store_FirstResult(&first);
        return ok ? SP_OK : st;
    }
    for (int i = 0; i < k; i++) {
        redisReply *r;
        spStatus st = store_Read(s, &r);
        if (st != SP_OK)
            return st; /* connection gone: the rest of the replies with it */
        uint64_t count = 0;
        /* expect_n == 0 asks for empty tensors: CheckTensor's 0 means "any". */
        st = store_CheckTensor(s, keys[i], r, expect_n, &count);
        if (st == SP_OK && count != expect_n)
            st = sp_Error(SP_ERR_INVALID, "redis %s: key '%s' holds %llu elements, expected %zu",
                          store_Name(s), keys[i], (unsigned long long)count, expect_n);
        if (st == SP_OK)
            st = store_CopyTensor(s, keys[i], r, outs[i], expect_n, 1);
        freeReplyObject(r);
        if (ok)
            ok[i] = st == SP_OK;
        store_KeepFirst(&first, st);
    }
    spStatus st = store_FirstResult(&first);
    return ok ? SP_OK : st;
}

spStatus store_Delete(store *s, const char *key)
{
    redisReply *r;
    spStatus st = check_Key(key);
    if (st == SP_OK)
        st = store_Exec(s, &r, "DEL %b", key, strlen(key));
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_INTEGER)
        st = store_Fail(s, r, "DEL");
    freeReplyObject(r);
    return st;
}

spStatus store_Exists(store *s, const char *key, int *exists)
{
    redisReply *r;
    spStatus st = check_Key(key);
    if (st == SP_OK)
        st = store_Exec(s, &r, "EXISTS %b", key, strlen(key));
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_INTEGER)
        st = store_Fail(s, r, "EXISTS");
    else
        *exists = r->integer > 0;
    freeReplyObject(r);
    return st;
}

spStatus store_GetTensorCrc(store *s, const char *key, uint32_t *crc)
{
    redisReply *r;
    spStatus st = check_Key(key);
    if (st == SP_OK)
        st = store_Exec(s, &r, "GETRANGE %b 0 %d", key, strlen(key), WIRE_HEADER_SIZE - 1);
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_STRING)
        st = store_Fail(s, r, "GETRANGE");
    else if (r->len == 0)
        st = sp_Error(SP_ERR_NOT_FOUND, "redis %s: key '%s' not found", store_Name(s), key);
    else if (r->len != WIRE_HEADER_SIZE || memcmp(r->str, WIRE_MAGIC, 4) != 0)
        st = sp_Error(SP_ERR_FORMAT, "redis %s: '%s' does not start with a tensor header",
                      store_Name(s), key);
    else /* offset 16: the payload's checksum, little-endian (core/wire.h) */
        *crc = (uint32_t)(uint8_t)r->str[16] | (uint32_t)(uint8_t)r->str[17] << 8 |
               (uint32_t)(uint8_t)r->str[18] << 16 | (uint32_t)(uint8_t)r->str[19] << 24;
    freeReplyObject(r);
    return st;
}
