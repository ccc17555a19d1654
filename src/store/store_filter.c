/* store_filter.c - MLLESS's significance filter on stored tensors
 * (store_Filter): SPIRT.FILTER inside Redis with the module, else fetched,
 * filtered here with the same kernel (core/kernels.h kern_Filter) and
 * stored back. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "store/store_internal.h"

static spStatus flt_InDb(store *s, const store_filter *f, size_t *sent)
{
    char num[3][32];
    snprintf(num[0], sizeof num[0], "%lld", (long long)f->ttl_s * 1000);
    snprintf(num[1], sizeof num[1], "%.9g", (double)f->scale);
    snprintf(num[2], sizeof num[2], "%.9g", (double)f->thr);
    const char *argv[9] = {"SPIRT.FILTER", f->acc_out, f->sparse_out, num[0], f->params,
                           f->src,         num[1],     num[2],       f->acc_in};
    redisReply *r;
    spStatus st = store_ExecArgv(s, f->acc_in ? 9 : 8, argv, &r);
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_INTEGER || r->integer < 0)
        st = store_Fail(s, r, "SPIRT.FILTER");
    else
        *sent = (size_t)r->integer;
    freeReplyObject(r);
    return st;
}

static spStatus flt_Local(store *s, const store_filter *f, size_t *sent)
{
    float *w = NULL, *src = NULL, *acc = NULL;
    unsigned char *pairs = NULL;
    uint8_t *blob = NULL;
    size_t n = 0, n2 = 0, n3 = 0, blen = 0;
    spStatus st = store_GetTensor(s, f->params, 0, &w, &n);
    if (!st)
        st = store_GetTensor(s, f->src, n, &src, &n2);
    if (!st && f->acc_in)
        st = store_GetTensor(s, f->acc_in, n, &acc, &n3);
    if (!st && !acc && !(acc = calloc(n ? n : 1, sizeof *acc)))
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    if (!st && !(pairs = malloc(n ? n * KERN_PAIR : 1)))
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    if (st)
        goto out;
    size_t k = kern_Filter(acc, acc, src, f->scale, w, n, f->thr, pairs);
    for (size_t i = 0; i < n && !st; i++)
        if (!isfinite(acc[i]))
            st = sp_Error(SP_ERR_INVALID, "filter: not finite: the accumulated update holds "
                          "NaN or Inf; nothing written");
    if (st || (st = wire_Encode(WIRE_SPARSE_F32, pairs, k, (uint32_t)n, &blob, &blen)) ||
        (st = store_PutTensor(s, f->acc_out, acc, n, f->ttl_s)) ||
        (st = store_PutBlob(s, f->sparse_out, blob, blen, f->ttl_s)))
        goto out;
    *sent = k;
out:
    free(w);
    free(src);
    free(acc);
    free(pairs);
    free(blob);
    return st;
}

spStatus store_Filter(store *s, const store_filter *f, size_t *sent, int *in_db)
{
    const char *keys[5] = {f->acc_out, f->sparse_out, f->params, f->src, f->acc_in};
    *sent = 0;
    if (in_db)
        *in_db = 0;
    for (int i = 0; i < 4; i++)
        if (!keys[i] || !*keys[i])
            return sp_Error(SP_ERR_INVALID, "filter: missing key");
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++)
            if (keys[a] && keys[b] && strcmp(keys[a], keys[b]) == 0)
                return sp_Error(SP_ERR_INVALID, "filter: acc_out, sparse_out, params, src and "
                                "acc_in must be distinct keys");
    if (!isfinite(f->scale) || !(f->thr >= 0) || !isfinite(f->thr) || f->ttl_s < 0)
        return sp_Error(SP_ERR_INVALID, "filter: scale %g, thr %g, ttl %d", (double)f->scale,
                        (double)f->thr, f->ttl_s);
    int module = store_HasModule(s);
    if (in_db)
        *in_db = module;
    return module ? flt_InDb(s, f, sent) : flt_Local(s, f, sent);
}
