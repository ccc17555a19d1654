/* rawcmd.c - the few Redis commands the steps send without a store wrapper
 * (STRLEN checks before in-database ops), through store_Raw. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "core/wire.h"
#include "steps/step_util.h"

spStatus raw_Status(store *s, const void *reply, const char *what)
{
    const redisContext *c = store_Raw(s);
    const redisReply *r = reply;
    if (!r) {
        if (c && c->err == REDIS_ERR_IO && (errno == EAGAIN || errno == EWOULDBLOCK))
            return sp_Error(SP_ERR_TIMEOUT, "%s: redis timed out", what);
        return sp_Error(SP_ERR_UNAVAILABLE, "%s: redis connection failed: %s", what,
                        c && c->errstr[0] ? c->errstr : "no connection");
    }
    if (r->type != REDIS_REPLY_ERROR)
        return SP_OK;
    const char *e = r->str ? r->str : "";
    if (!strncmp(e, "NOAUTH", 6) || !strncmp(e, "WRONGPASS", 9) || !strncmp(e, "NOPERM", 6))
        return sp_Error(SP_ERR_AUTH, "%s: redis refused: %s", what, e);
    if (!strncmp(e, "LOADING", 7) || !strncmp(e, "BUSY", 4) || !strncmp(e, "MASTERDOWN", 10) ||
        !strncmp(e, "TRYAGAIN", 8) || !strncmp(e, "OOM", 3))
        return sp_Error(SP_ERR_UNAVAILABLE, "%s: redis busy: %s", what, e);
    return sp_Error(SP_ERR_INTERNAL, "%s: redis error: %s", what, e);
}

spStatus raw_StrLens(store *s, const char *const *keys, int k, long long *lens)
{
    redisContext *c = store_Raw(s);
    if (!c)
        return sp_Error(SP_ERR_UNAVAILABLE, "STRLEN: no redis connection");
    for (int i = 0; i < k; i++) {
        const char *argv[2] = {"STRLEN", keys[i]};
        size_t argl[2] = {6, strlen(keys[i])};
        if (redisAppendCommandArgv(c, 2, argv, argl) != REDIS_OK)
            return raw_Status(s, NULL, "STRLEN");
    }
    spStatus st = SP_OK;
    for (int i = 0; i < k; i++) {
        void *rep = NULL;
        /* Read every reply even after a failure, so the connection stays in
         * step with the server for the next request. */
        if (redisGetReply(c, &rep) != REDIS_OK)
            return raw_Status(s, NULL, "STRLEN");
        redisReply *r = rep;
        if (st == SP_OK && r->type == REDIS_REPLY_INTEGER)
            lens[i] = r->integer;
        else if (st == SP_OK)
            st = r->type == REDIS_REPLY_ERROR && strstr(r->str, "WRONGTYPE")
                     ? sp_Error(SP_ERR_INVALID, "%s does not hold a string", keys[i])
                     : raw_Status(s, r, keys[i]);
        freeReplyObject(r);
    }
    return st;
}

spStatus raw_CheckTensors(store *s, const char *const *keys, int k, size_t n,
                          const char *writer)
{
    long long *lens = malloc(sizeof *lens * (size_t)(k > 0 ? k : 1));
    if (!lens)
        return sp_Error(SP_ERR_NOMEM, "out of memory");
    spStatus st = raw_StrLens(s, keys, k, lens);
    long long want = (long long)wire_EncodedSize(WIRE_F32, n);
    for (int i = 0; st == SP_OK && i < k; i++) {
        if (lens[i] == 0)
            st = sp_Error(SP_ERR_NOT_FOUND, "%s is missing (has %s run?)", keys[i], writer);
        else if (lens[i] != want)
            st = sp_Error(SP_ERR_INVALID,
                          "%s holds %lld bytes, but a tensor of the model's %zu parameters "
                          "takes %lld",
                          keys[i], lens[i], n, want);
    }
    free(lens);
    return st;
}
