/* store_sparse.c - what the sparse models need of the store: the check
 * every reader of a sparse tensor (WIRE_SPARSE_F32) runs, the client-side
 * mean of fetched sparse sources (what SPIRT.AVG computes inside Redis,
 * with the same kernel), and reading some rows of a dense tensor
 * (SPIRT.ROWS with the module, else a GETRANGE a row). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "store/store_internal.h"

spStatus store_CheckSparse(const store *s, const char *key, const redisReply *r,
                           uint64_t dense_n, wire_view *v)
{
    spStatus st = store_ReplyWire(s, key, r, v);
    if (st)
        return st;
    if ((st = wire_CheckSparse(v)))
        return sp_Wrap(st, "redis %s: '%s'", store_Name(s), key);
    if (dense_n && v->extra != dense_n)
        return sp_Error(SP_ERR_INVALID, "redis %s: size mismatch: '%s' has dense length %u, "
                        "expected %llu", store_Name(s), key, v->extra,
                        (unsigned long long)dense_n);
    return SP_OK;
}

int store_IsSparseReply(const redisReply *r)
{
    wire_view v;
    return r->type == REDIS_REPLY_STRING && r->len >= WIRE_HEADER_SIZE &&
           wire_ParseHeader((const uint8_t *)r->str, &v) == SP_OK && v.dtype == WIRE_SPARSE_F32;
}

spStatus store_MeanSparse(store *s, const char *dst, const char *const *srcs, int k,
                          redisReply **r, int ttl_s)
{
    const unsigned char **in = calloc((size_t)k, sizeof *in);
    size_t *counts = calloc((size_t)k, sizeof *counts), *pos = calloc((size_t)k, sizeof *pos);
    uint8_t *blob = NULL;
    spStatus st = in && counts && pos ? SP_OK : sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    uint64_t dense = 0, cap = 0;
    for (int i = 0; i < k && st == SP_OK; i++)
        if (strcmp(srcs[i], dst) == 0)
            st = sp_Error(SP_ERR_INVALID, "redis %s: bad argument: dst '%s' is also a source",
                          store_Name(s), dst);
    for (int i = 0; i < k && st == SP_OK; i++) {
        wire_view v;
        if ((st = store_CheckSparse(s, srcs[i], r[i], dense, &v)))
            break;
        dense = v.extra;
        in[i] = v.payload;
        counts[i] = (size_t)v.count;
        cap += v.count;
    }
    if (st == SP_OK && !(blob = malloc(WIRE_HEADER_SIZE + (size_t)cap * KERN_PAIR + 1)))
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    if (st == SP_OK) {
        size_t n = kern_MeanSparse(blob + WIRE_HEADER_SIZE, in, counts, k, pos);
        for (size_t i = 0; i < n && st == SP_OK; i++) {
            float x;
            memcpy(&x, blob + WIRE_HEADER_SIZE + KERN_PAIR * i + 4, sizeof x);
            if (!isfinite(x))
                st = sp_Error(SP_ERR_INVALID, "redis %s: SPIRT.AVG: not finite: the average "
                              "for '%s' holds NaN or Inf; nothing written", store_Name(s), dst);
        }
        if (st == SP_OK) {
            wire_PutHeader(blob, WIRE_SPARSE_F32, n, 0, (uint32_t)dense);
            wire_Reseal(blob, WIRE_HEADER_SIZE + n * KERN_PAIR);
            st = store_PutBlob(s, dst, blob, WIRE_HEADER_SIZE + n * KERN_PAIR, ttl_s);
        }
    }
    free(blob);
    free(in);
    free(counts);
    free(pos);
    return st;
}

/* Rows per pipeline flush of store_GetTensorRows. */
#define ROWS_PIPELINE 1024

/* SPIRT.ROWS: every row in one command (the row numbers packed
 * little-endian) and one reply. */
static spStatus rows_InDb(store *s, const char *key, size_t width, const uint32_t *rows,
                          size_t k, float *out)
{
    char w[24];
    snprintf(w, sizeof w, "%zu", width);
    unsigned char *packed = malloc(4 * k + 1);
    if (!packed)
        return sp_Error(SP_ERR_NOMEM, "out of memory for %zu row numbers", k);
    for (size_t i = 0; i < k; i++)
        for (int b = 0; b < 4; b++)
            packed[4 * i + (size_t)b] = (unsigned char)(rows[i] >> (8 * b));
    const char *argv[4] = {"SPIRT.ROWS", key, w, (const char *)packed};
    size_t lens[4] = {10, strlen(key), strlen(w), 4 * k};
    redisReply *r;
    spStatus st = store_AppendArgv(s, 4, argv, lens);
    free(packed);
    if (st || (st = store_Read(s, &r)))
        return st;
    if (r->type != REDIS_REPLY_STRING)
        st = store_Fail(s, r, "SPIRT.ROWS");
    else if (r->len != k * width * sizeof(float))
        st = sp_Error(SP_ERR_FORMAT, "redis %s: SPIRT.ROWS answered %zu bytes for %zu rows",
                      store_Name(s), r->len, k);
    else if (k)
        memcpy(out, r->str, r->len);
    freeReplyObject(r);
    return st;
}

spStatus store_GetTensorRows(store *s, const char *key, uint64_t expect_n, size_t width,
                             const uint32_t *rows, size_t k, float *out)
{
    if (!key || !*key || width == 0 || (k && (!rows || !out)))
        return sp_Error(SP_ERR_INVALID, "tensor rows: missing key, rows or output");
    redisReply *h;
    spStatus st = store_Exec(s, &h, "GETRANGE %b 0 %d", key, strlen(key), (int)WIRE_HEADER_SIZE - 1);
    if (st)
        return st;
    wire_view v;
    if (h->type != REDIS_REPLY_STRING || h->len == 0)
        st = sp_Error(SP_ERR_NOT_FOUND, "redis %s: no such key '%s'", store_Name(s), key);
    else if (h->len < WIRE_HEADER_SIZE || wire_ParseHeader((const uint8_t *)h->str, &v))
        st = sp_Error(SP_ERR_FORMAT, "redis %s: corrupt tensor at '%s'", store_Name(s), key);
    else if (v.dtype != WIRE_F32)
        st = sp_Error(SP_ERR_INVALID, "redis %s: '%s' holds dtype %d, not a dense tensor",
                      store_Name(s), key, (int)v.dtype);
    else if (expect_n && v.count != expect_n)
        st = sp_Error(SP_ERR_INVALID, "redis %s: '%s' holds %llu elements, expected %llu",
                      store_Name(s), key, (unsigned long long)v.count,
                      (unsigned long long)expect_n);
    freeReplyObject(h);
    for (size_t i = 0; st == SP_OK && i < k; i++)
        if ((uint64_t)(rows[i] + 1) * width > v.count)
            st = sp_Error(SP_ERR_INVALID, "redis %s: row %u of width %zu is beyond the %llu "
                          "elements of '%s'", store_Name(s), rows[i], width,
                          (unsigned long long)v.count, key);
    if (st == SP_OK && store_HasModule(s))
        return rows_InDb(s, key, width, rows, k, out);
    size_t bytes = width * sizeof(float);
    for (size_t off = 0; st == SP_OK && off < k; off += ROWS_PIPELINE) {
        size_t n = k - off < ROWS_PIPELINE ? k - off : ROWS_PIPELINE;
        for (size_t i = 0; st == SP_OK && i < n; i++) {
            size_t at = WIRE_HEADER_SIZE + (size_t)rows[off + i] * bytes;
            char from[24], to[24]; /* hiredis formats no size_t */
            snprintf(from, sizeof from, "%zu", at);
            snprintf(to, sizeof to, "%zu", at + bytes - 1);
            st = store_Append(s, "GETRANGE %b %s %s", key, strlen(key), from, to);
        }
        if (st) {
            store_DropQueued(s);
            break;
        }
        for (size_t i = 0; i < n; i++) {
            redisReply *r = NULL;
            spStatus rs = store_Read(s, &r);
            if (rs == SP_OK && r->type == REDIS_REPLY_ERROR)
                rs = store_Fail(s, r, "GETRANGE");
            else if (rs == SP_OK && (r->type != REDIS_REPLY_STRING || r->len != bytes))
                rs = sp_Error(SP_ERR_FORMAT, "redis %s: '%s' changed or shrank while its rows "
                              "were read", store_Name(s), key);
            if (rs == SP_OK)
                memcpy(out + (off + i) * width, r->str, bytes);
            if (r)
                freeReplyObject(r);
            if (rs && st == SP_OK)
                st = rs;
            if (rs && store_IsBroken(s))
                return st;
        }
    }
    return st;
}
