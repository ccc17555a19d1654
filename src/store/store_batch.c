/* store_batch.c - commands over many keys at once, for the steps that
 * clean up an iteration's keys, check what earlier steps wrote, and move
 * the dataset rows: UNLINK, pipelined STRLEN, MGET into caller buffers and
 * pipelined SETs. Each is one round trip (or one pipeline) however many
 * keys it names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store_direct.h"

static spStatus check_Keys(const char *op, const char *const *keys, int k)
{
    if (k < 0 || (k > 0 && !keys))
        return sp_Error(SP_ERR_INVALID, "redis %s: bad key list (k=%d)", op, k);
    for (int i = 0; i < k; i++)
        if (!keys[i] || !*keys[i])
            return sp_Error(SP_ERR_INVALID, "redis %s: key %d is empty", op, i);
    return SP_OK;
}

/* Sends "<cmd> key1 ... keyk" as one command and reads its reply. */
/* Queues "cmd key..." without sending it. */
static spStatus keys_Append(store *s, const char *cmd, const char *const *keys, int k)
{
    const char **argv = malloc(sizeof *argv * (size_t)(k + 1));
    size_t *lens = malloc(sizeof *lens * (size_t)(k + 1));
    spStatus st = SP_OK;
    if (!argv || !lens) {
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory for a %d-key %s", k, cmd);
    } else {
        argv[0] = cmd;
        lens[0] = strlen(cmd);
        for (int i = 0; i < k; i++) {
            argv[i + 1] = keys[i];
            lens[i + 1] = strlen(keys[i]);
        }
        st = store_AppendArgv(s, k + 1, argv, lens);
    }
    free(argv);
    free(lens);
    return st;
}

static spStatus keys_Command(store *s, const char *cmd, const char *const *keys, int k,
                             redisReply **out)
{
    spStatus st = keys_Append(s, cmd, keys, k);
    return st ? st : store_Read(s, out);
}

spStatus store_Unlink(store *s, const char *const *keys, int k, int *removed)
{
    if (removed)
        *removed = 0;
    spStatus st = check_Keys("UNLINK", keys, k);
    if (st || k == 0)
        return st;
    redisReply *r;
    if ((st = keys_Command(s, "UNLINK", keys, k, &r)))
        return st;
    if (r->type != REDIS_REPLY_INTEGER)
        st = store_Fail(s, r, "UNLINK");
    else if (removed)
        *removed = (int)r->integer;
    freeReplyObject(r);
    return st;
}

spStatus store_GetBlobLens(store *s, const char *const *keys, int k, size_t *lens)
{
    spStatus st = check_Keys("STRLEN", keys, k);
    if (st || k == 0)
        return st;
    redisReply **r = calloc((size_t)k, sizeof *r);
    if (!r)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory for %d replies", k);
    for (int i = 0; i < k && !st; i++)
        st = store_Append(s, "STRLEN %b", keys[i], strlen(keys[i]));
    if (st)
        store_DropQueued(s);
    /* Every reply is read before any is judged, so the connection stays in
     * step with the server for the next command. */
    if (!st && (st = store_ReadN(s, r, k)) == SP_OK) {
        for (int i = 0; i < k && !st; i++) {
            if (r[i]->type == REDIS_REPLY_INTEGER && r[i]->integer >= 0)
                lens[i] = (size_t)r[i]->integer;
            else
                st = sp_Wrap(store_Fail(s, r[i], "STRLEN"), "%s", keys[i]);
        }
        store_FreeN(r, k);
    }
    free(r);
    return st;
}

static float *row_Dest(void *ctx, uint64_t n)
{
    (void)n;
    return ctx;
}

/* MGET's array of bulk values, each read straight into its row of out
 * (store_direct.c). Every element is read even after a bad one, so the
 * connection stays in step; the first failure is what the caller hears. */
static spStatus rows_Direct(store *s, const char *const *keys, int k, size_t n, float *out)
{
    spStatus st = keys_Append(s, "MGET", keys, k);
    if (st || (st = direct_Flush(s, "MGET")))
        return st;
    direct_in d;
    direct_InInit(&d, s);
    long long m = -1;
    if ((st = direct_ArrayLen(&d, &m, "MGET")))
        return st;
    if (m != k) {
        direct_InDone(&d);
        return sp_Error(SP_ERR_INTERNAL, "redis %s: MGET of %d keys answered %lld values",
                        store_Name(s), k, m);
    }
    store_first first = {0};
    for (int i = 0; i < k; i++) {
        uint64_t count;
        st = direct_GetTensor(&d, keys[i], n, row_Dest, out + (size_t)i * n, &count);
        if (store_IsBroken(s))
            return st;
        store_KeepFirst(&first, st);
    }
    direct_InDone(&d);
    return store_FirstResult(&first);
}

spStatus store_GetRowsInto(store *s, const char *const *keys, int k, size_t n, float *out)
{
    spStatus st = check_Keys("MGET", keys, k);
    if (st || k == 0)
        return st;
    if (n == 0 || !out)
        return sp_Error(SP_ERR_INVALID, "redis MGET: rows need at least one element");
    if (direct_Usable(s))
        return rows_Direct(s, keys, k, n, out);
    redisReply *r;
    if ((st = keys_Command(s, "MGET", keys, k, &r)))
        return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)k)
        st = store_Fail(s, r, "MGET");
    for (int i = 0; i < k && !st; i++) {
        uint64_t count;
        /* MGET answers nil for a missing key and for a non-string one. */
        st = store_CheckTensor(s, keys[i], r->element[i], n, &count);
        if (!st)
            st = store_CopyTensor(s, keys[i], r->element[i], out + (size_t)i * n, n, 1);
    }
    freeReplyObject(r);
    return st;
}

spStatus store_PutBlobs(store *s, const char *const *keys, const void *const *data,
                        const size_t *lens, int k, int ttl_s)
{
    spStatus st = check_Keys("SET", keys, k);
    if (st || k == 0)
        return st;
    if (ttl_s < 0)
        return sp_Error(SP_ERR_INVALID, "redis: negative ttl %d", ttl_s);
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_s);
    for (int i = 0; i < k && !st; i++) {
        const char *argv[5] = {"SET", keys[i], data[i] ? data[i] : "", "EX", ttl};
        size_t argl[5] = {3, strlen(keys[i]), data[i] ? lens[i] : 0, 2, strlen(ttl)};
        /* hiredis copies the arguments into its output buffer. */
        st = store_AppendArgv(s, ttl_s > 0 ? 5 : 3, argv, argl);
    }
    if (st) {
        store_DropQueued(s);
        return st;
    }
    /* Every reply is read even after a refused SET, so the connection stays
     * usable; the first refusal is what the caller hears about. */
    store_first first = {0};
    for (int i = 0; i < k; i++) {
        redisReply *r;
        if ((st = store_Read(s, &r)))
            return st; /* connection gone: the rest of the replies with it */
        if (r->type != REDIS_REPLY_STATUS)
            store_KeepFirst(&first, sp_Wrap(store_Fail(s, r, "SET"), "storing '%s'", keys[i]));
        freeReplyObject(r);
    }
    return store_FirstResult(&first);
}

spStatus store_GetBlobs(store *s, const char *const *keys, int k, uint8_t **out, size_t *lens)
{
    spStatus st = check_Keys("MGET", keys, k);
    if (st || k == 0)
        return st;
    for (int i = 0; i < k; i++)
        out[i] = NULL;
    redisReply *r;
    if ((st = keys_Command(s, "MGET", keys, k, &r)))
        return st;
    if (r->type != REDIS_REPLY_ARRAY || r->elements != (size_t)k)
        st = store_Fail(s, r, "MGET");
    for (int i = 0; i < k && !st; i++) {
        const redisReply *e = r->element[i];
        /* MGET answers nil for a missing key and for a non-string one. */
        if (e->type != REDIS_REPLY_STRING)
            st = sp_Error(SP_ERR_NOT_FOUND, "redis %s: no such key '%s'", store_Name(s),
                          keys[i]);
        else if (!(out[i] = malloc(e->len ? e->len : 1)))
            st = sp_Error(SP_ERR_NOMEM, "redis: out of memory for %zu bytes", e->len);
        else {
            memcpy(out[i], e->str, e->len);
            lens[i] = e->len;
        }
    }
    freeReplyObject(r);
    if (st)
        for (int i = 0; i < k; i++) {
            free(out[i]);
            out[i] = NULL;
        }
    return st;
}
