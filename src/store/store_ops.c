/* store_ops.c - averaging and SGD updates on stored tensors.
 *
 * With the spirt module loaded both run inside Redis (SPIRT.AVG,
 * SPIRT.UPDATE): no tensor crosses the network. Without it the same kernels
 * (core/kernels.h, compiled into the module too) run here on fetched
 * copies, so the two paths give bit-identical results; the fallback is not
 * atomic (two clients updating one key concurrently can lose an update),
 * which the module path is. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "store/store_internal.h"

/* Every source as a float array, validated like the module does: all
 * present, dense float32, correct checksums, one common length. */
static spStatus avg_Fetch(store *s, const char *const *srcs, int k, float **xs, uint64_t *n)
{
    redisReply **r = calloc((size_t)k, sizeof *r);
    if (!r)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    spStatus st = SP_OK;
    for (int i = 0; i < k && st == SP_OK; i++)
        st = store_Append(s, "GET %b", srcs[i], strlen(srcs[i]));
    if (st != SP_OK)
        store_DropQueued(s);
    else
        st = store_ReadN(s, r, k);
    if (st != SP_OK) {
        free(r);
        return st;
    }
    for (int i = 0; i < k && st == SP_OK; i++) {
        uint64_t c = 0;
        st = store_CheckTensor(s, srcs[i], r[i], 0, &c);
        if (st == SP_OK && i > 0 && c != *n)
            st = sp_Error(SP_ERR_INVALID, "redis %s: size mismatch: '%s' has %llu elements, '%s' %llu",
                          store_Name(s), srcs[0], (unsigned long long)*n, srcs[i],
                          (unsigned long long)c);
        if (st == SP_OK && i == 0)
            *n = c;
        if (st == SP_OK && !(xs[i] = malloc(c ? (size_t)c * sizeof(float) : 1)))
            st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
        /* Values are policed on the result, as the module does. */
        if (st == SP_OK)
            st = store_CopyTensor(s, srcs[i], r[i], xs[i], c, 0);
    }
    store_FreeN(r, k);
    free(r);
    return st;
}

static spStatus avg_Local(store *s, const char *dst, const char *const *srcs, int k, int ttl_s)
{
    float **xs = calloc((size_t)k, sizeof *xs);
    if (!xs)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    uint64_t n = 0;
    spStatus st = avg_Fetch(s, srcs, k, xs, &n);
    if (st == SP_OK) {
        /* The module's kernel over the same argument list: the same bits. */
        float *acc = xs[0];
        kern_Mean(acc, (const ufloat *const *)xs, k, (size_t)n);
        /* Like SPIRT.AVG: a NaN/Inf mean is refused and nothing written. */
        for (uint64_t i = 0; i < n && st == SP_OK; i++)
            if (!isfinite(acc[i]))
                st = sp_Error(SP_ERR_INVALID, "redis %s: SPIRT.AVG: not finite: the average "
                              "for '%s' holds NaN or Inf; nothing written", store_Name(s), dst);
        if (st == SP_OK)
            st = store_PutTensor(s, dst, acc, (size_t)n, ttl_s);
    }
    for (int j = 0; j < k; j++)
        free(xs[j]);
    free(xs);
    return st;
}

static spStatus avg_InDb(store *s, const char *dst, const char *const *srcs, int k, int ttl_s)
{
    const char **argv = malloc(sizeof *argv * (size_t)(k + 3));
    size_t *lens = malloc(sizeof *lens * (size_t)(k + 3));
    spStatus st = SP_OK;
    if (!argv || !lens) {
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
        goto out;
    }
    char ttl[32];
    snprintf(ttl, sizeof ttl, "%lld", (long long)ttl_s * 1000);
    argv[0] = "SPIRT.AVG";
    argv[1] = dst;
    argv[2] = ttl;
    for (int i = 0; i < k; i++)
        argv[3 + i] = srcs[i];
    for (int i = 0; i < k + 3; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r;
    st = store_AppendArgv(s, k + 3, argv, lens);
    if (st == SP_OK && (st = store_Read(s, &r)) == SP_OK) {
        if (r->type != REDIS_REPLY_INTEGER)
            st = store_Fail(s, r, "SPIRT.AVG");
        freeReplyObject(r);
    }
out:
    free(argv);
    free(lens);
    return st;
}

spStatus store_Average(store *s, const char *dst, const char *const *srcs, int k, int ttl_s,
                       int *in_db)
{
    if (in_db)
        *in_db = 0;
    if (k < 1 || !srcs || !dst || !*dst)
        return sp_Error(SP_ERR_INVALID, "average: need a destination and at least one source");
    if (ttl_s < 0)
        return sp_Error(SP_ERR_INVALID, "average: negative ttl %d", ttl_s);
    for (int i = 0; i < k; i++)
        if (!srcs[i] || !*srcs[i])
            return sp_Error(SP_ERR_INVALID, "average: source %d is empty", i);
    if (store_HasModule(s)) {
        if (in_db)
            *in_db = 1;
        return avg_InDb(s, dst, srcs, k, ttl_s);
    }
    return avg_Local(s, dst, srcs, k, ttl_s);
}

/* ---- update ---- */

typedef struct {
    const char *keys[3]; /* params, grad, momentum (optional) */
    int nkeys;
    float lr, mom, wd;
} upd_args;

static spStatus upd_Local(store *s, const upd_args *a)
{
    redisReply *r[3] = {0};
    spStatus st = SP_OK;
    for (int i = 0; i < a->nkeys && st == SP_OK; i++)
        st = store_Append(s, "GET %b", a->keys[i], strlen(a->keys[i]));
    if (st != SP_OK)
        store_DropQueued(s);
    else
        st = store_ReadN(s, r, a->nkeys);
    if (st != SP_OK)
        return st;
    uint64_t n = 0, gn = 0, vn = 0;
    float *w = NULL, *g = NULL, *v = NULL;
    st = store_CheckTensor(s, a->keys[0], r[0], 0, &n);
    if (st == SP_OK)
        st = store_CheckTensor(s, a->keys[1], r[1], 0, &gn);
    if (st == SP_OK && gn != n)
        st = sp_Error(SP_ERR_INVALID, "redis %s: size mismatch: params has %llu elements, grad %llu",
                      store_Name(s), (unsigned long long)n, (unsigned long long)gn);
    int v_exists = a->nkeys == 3 && r[2]->type != REDIS_REPLY_NIL;
    if (st == SP_OK && v_exists && (st = store_CheckTensor(s, a->keys[2], r[2], 0, &vn)) == SP_OK &&
        vn != n)
        st = sp_Error(SP_ERR_INVALID,
                      "redis %s: size mismatch: params has %llu elements, momentum '%s' %llu",
                      store_Name(s), (unsigned long long)n, a->keys[2], (unsigned long long)vn);
    size_t bytes = n ? (size_t)n * sizeof(float) : 1;
    if (st == SP_OK && (!(w = malloc(bytes)) || !(g = malloc(bytes)) ||
                        (a->nkeys == 3 && !(v = calloc(1, bytes)))))
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    if (st == SP_OK)
        st = store_CopyTensor(s, a->keys[0], r[0], w, n, 0);
    if (st == SP_OK)
        st = store_CopyTensor(s, a->keys[1], r[1], g, n, 0);
    if (st == SP_OK && v_exists)
        st = store_CopyTensor(s, a->keys[2], r[2], v, n, 0);
    store_FreeN(r, a->nkeys);
    if (st == SP_OK) {
        /* The module's kernels: the same bits as SPIRT.UPDATE. */
        if (v)
            kern_SgdMomentum(w, g, v, (size_t)n, a->lr, a->mom, a->wd);
        else
            kern_Sgd(w, g, (size_t)n, a->lr, a->wd);
        st = store_PutTensorKeepTtl(s, a->keys[0], w, (size_t)n);
        if (st == SP_OK && v)
            st = store_PutTensorKeepTtl(s, a->keys[2], v, (size_t)n);
    }
    free(w);
    free(g);
    free(v);
    return st;
}

static spStatus upd_InDb(store *s, const upd_args *a)
{
    char num[3][32];
    snprintf(num[0], sizeof num[0], "%.9g", (double)a->lr);
    snprintf(num[1], sizeof num[1], "%.9g", (double)a->mom);
    snprintf(num[2], sizeof num[2], "%.9g", (double)a->wd);
    const char *argv[7] = {"SPIRT.UPDATE", a->keys[0], a->keys[1], num[0], num[1], num[2],
                           a->keys[2]};
    size_t lens[7];
    int argc = a->nkeys == 3 ? 7 : 6;
    for (int i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    redisReply *r;
    spStatus st = store_AppendArgv(s, argc, argv, lens);
    if (st != SP_OK || (st = store_Read(s, &r)) != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_STATUS)
        st = store_Fail(s, r, "SPIRT.UPDATE");
    freeReplyObject(r);
    return st;
}

spStatus store_Update(store *s, const char *params_key, const char *grad_key,
                      const char *mom_key, float lr, float momentum, float weight_decay,
                      int *in_db)
{
    if (in_db)
        *in_db = 0;
    if (!params_key || !*params_key || !grad_key || !*grad_key || (mom_key && !*mom_key))
        return sp_Error(SP_ERR_INVALID, "update: missing params or grad key");
    if (!isfinite(lr) || !isfinite(momentum) || !isfinite(weight_decay))
        return sp_Error(SP_ERR_INVALID, "update: lr %g, momentum %g, weight_decay %g not all finite",
                        (double)lr, (double)momentum, (double)weight_decay);
    if (momentum != 0.0f && !mom_key)
        return sp_Error(SP_ERR_INVALID, "update: momentum %g needs a mom_key", (double)momentum);
    if (strcmp(params_key, grad_key) == 0 ||
        (mom_key && (strcmp(mom_key, params_key) == 0 || strcmp(mom_key, grad_key) == 0)))
        return sp_Error(SP_ERR_INVALID, "update: params, grad and mom_key must be distinct keys");
    upd_args a = {.keys = {params_key, grad_key, mom_key},
                  .nkeys = mom_key ? 3 : 2,
                  .lr = lr,
                  .mom = momentum,
                  .wd = weight_decay};
    if (store_HasModule(s)) {
        if (in_db)
            *in_db = 1;
        return upd_InDb(s, &a);
    }
    return upd_Local(s, &a);
}
