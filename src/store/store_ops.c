/* store_ops.c - averaging and SGD updates on stored tensors, dense or
 * sparse (store_sparse.c has the sparse mean and checks).
 *
 * With the spirt module loaded both run inside Redis (SPIRT.AVG,
 * SPIRT.UPDATE): no tensor crosses the network. Without it the same kernels
 * (core/kernels.h, compiled into the module too) run here on fetched
 * copies, so the two paths give bit-identical results; the fallback is not
 * atomic (two clients updating one key concurrently can lose an update),
 * which the module path is - except a marked update (store_UpdateMarked),
 * whose fallback reads under WATCH and writes in one MULTI/EXEC. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/kernels.h"
#include "core/wire.h"
#include "store/store_internal.h"

/* Every source's GET reply, in one pipeline, into r (k slots). */
static spStatus avg_Fetch(store *s, const char *const *srcs, int k, redisReply **r)
{
    spStatus st = SP_OK;
    for (int i = 0; i < k && st == SP_OK; i++)
        st = store_Append(s, "GET %b", srcs[i], strlen(srcs[i]));
    if (st != SP_OK) {
        store_DropQueued(s);
        return st;
    }
    return store_ReadN(s, r, k);
}

/* Every source as a float array, validated like the module does: all
 * present, dense float32, correct checksums, one common length. */
static spStatus avg_Copy(store *s, const char *const *srcs, int k, redisReply **r, float **xs,
                         uint64_t *n)
{
    spStatus st = SP_OK;
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
    return st;
}

static spStatus avg_Dense(store *s, const char *dst, const char *const *srcs, int k,
                          redisReply **r, int ttl_s)
{
    float **xs = calloc((size_t)k, sizeof *xs);
    if (!xs)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    uint64_t n = 0;
    spStatus st = avg_Copy(s, srcs, k, r, xs, &n);
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

/* Fetched and averaged here: sparse sources (judged by the first) as
 * store_sparse.c averages them, dense ones with kern_Mean. */
static spStatus avg_Local(store *s, const char *dst, const char *const *srcs, int k, int ttl_s)
{
    redisReply **r = calloc((size_t)k, sizeof *r);
    if (!r)
        return sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    spStatus st = avg_Fetch(s, srcs, k, r);
    if (st == SP_OK) {
        st = store_IsSparseReply(r[0]) ? store_MeanSparse(s, dst, srcs, k, r, ttl_s)
                                       : avg_Dense(s, dst, srcs, k, r, ttl_s);
        store_FreeN(r, k);
    }
    free(r);
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
    const char *marker;  /* store_UpdateMarked: the applied marker, else NULL */
    long iteration;
} upd_args;

/* The marker's iteration from a GET reply: -1 for none. */
static spStatus marker_Parse(const store *s, const upd_args *a, const redisReply *r, long *last)
{
    char text[24];
    *last = -1;
    if (r->type == REDIS_REPLY_NIL)
        return SP_OK;
    char *end = text;
    if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len < sizeof text) {
        memcpy(text, r->str, r->len);
        text[r->len] = '\0';
        *last = strtol(text, &end, 10);
    }
    if (end == text || *end || *last < 0)
        return sp_Error(SP_ERR_FORMAT, "redis %s: '%s' does not hold an iteration number",
                        store_Name(s), a->marker);
    return SP_OK;
}

/* Marked, the update and its record are written as one transaction; the
 * WATCH that preceded the reads makes EXEC refuse it if another client
 * changed params, momentum or the marker in between. */
static spStatus upd_Write(store *s, const upd_args *a, const float *w, const float *v, size_t n)
{
    if (!a->marker) {
        spStatus st = store_PutTensorKeepTtl(s, a->keys[0], w, n);
        return st == SP_OK && v ? store_PutTensorKeepTtl(s, a->keys[2], v, n) : st;
    }
    uint8_t *bw = NULL, *bv = NULL;
    size_t lw = 0, lv = 0;
    char t[24];
    snprintf(t, sizeof t, "%ld", a->iteration);
    spStatus st = wire_Encode(WIRE_F32, w, n, 0, &bw, &lw);
    if (st == SP_OK && v)
        st = wire_Encode(WIRE_F32, v, n, 0, &bv, &lv);
    int k = 0;
    if (st == SP_OK && (st = store_Append(s, "MULTI")) == SP_OK && ++k &&
        (st = store_Append(s, "SET %b %b KEEPTTL", a->keys[0], strlen(a->keys[0]), bw, lw)) ==
            SP_OK && ++k &&
        (!v || ((st = store_Append(s, "SET %b %b KEEPTTL", a->keys[2], strlen(a->keys[2]), bv,
                                   lv)) == SP_OK && ++k)) &&
        (st = store_Append(s, "SET %b %s", a->marker, strlen(a->marker), t)) == SP_OK && ++k)
        st = store_Append(s, "EXEC");
    free(bw);
    free(bv);
    if (st != SP_OK) {
        store_DropQueued(s);
        return st;
    }
    redisReply *r[5] = {0};
    if ((st = store_ReadN(s, r, k + 1)) != SP_OK)
        return st;
    const redisReply *exec = r[k];
    if (exec->type == REDIS_REPLY_NIL)
        st = sp_Error(SP_ERR_UNAVAILABLE, "redis %s: '%s' changed while it was being updated; "
                      "nothing written", store_Name(s), a->keys[0]);
    else if (exec->type != REDIS_REPLY_ARRAY)
        st = store_Fail(s, exec, "EXEC");
    for (size_t i = 0; st == SP_OK && i < exec->elements; i++)
        if (exec->element[i]->type != REDIS_REPLY_STATUS)
            st = store_Fail(s, exec->element[i], "SET");
    store_FreeN(r, k + 1);
    return st;
}

/* Ends a WATCH a marked update will not follow with EXEC. */
static void upd_Unwatch(store *s, const upd_args *a)
{
    redisReply *r = NULL;
    if (a->marker && store_Exec(s, &r, "UNWATCH") != SP_OK)
        sp_ClearError(); /* a broken connection is replaced anyway */
    if (r)
        freeReplyObject(r);
}

static spStatus upd_Local(store *s, const upd_args *a, int *duplicate)
{
    redisReply *r[4] = {0};
    spStatus st = SP_OK;
    int ngets = a->nkeys + (a->marker != NULL);
    if (a->marker) {
        redisReply *w = NULL;
        st = a->nkeys == 3 ? store_Exec(s, &w, "WATCH %b %b %b", a->marker, strlen(a->marker),
                                        a->keys[0], strlen(a->keys[0]), a->keys[2],
                                        strlen(a->keys[2]))
                           : store_Exec(s, &w, "WATCH %b %b", a->marker, strlen(a->marker),
                                        a->keys[0], strlen(a->keys[0]));
        if (w)
            freeReplyObject(w);
        if (st != SP_OK)
            return st;
    }
    for (int i = 0; i < a->nkeys && st == SP_OK; i++)
        st = store_Append(s, "GET %b", a->keys[i], strlen(a->keys[i]));
    if (st == SP_OK && a->marker)
        st = store_Append(s, "GET %b", a->marker, strlen(a->marker));
    if (st != SP_OK)
        store_DropQueued(s);
    else
        st = store_ReadN(s, r, ngets);
    if (st != SP_OK)
        return st;
    long last = -1;
    if (a->marker && (st = marker_Parse(s, a, r[a->nkeys], &last)) == SP_OK &&
        last >= a->iteration) {
        if (last > a->iteration)
            st = sp_Error(SP_ERR_CONFLICT, "redis %s: stale: iteration %ld, but %ld is applied "
                          "already", store_Name(s), a->iteration, last);
        *duplicate = last == a->iteration;
    }
    if (st != SP_OK || *duplicate) {
        store_FreeN(r, ngets);
        upd_Unwatch(s, a);
        return st;
    }
    uint64_t n = 0, gn = 0, vn = 0;
    float *w = NULL, *g = NULL, *v = NULL;
    wire_view sg = {0}; /* a sparse grad: only its elements move */
    st = store_CheckTensor(s, a->keys[0], r[0], 0, &n);
    if (st == SP_OK && store_IsSparseReply(r[1]))
        st = store_CheckSparse(s, a->keys[1], r[1], n, &sg);
    else if (st == SP_OK)
        st = store_CheckTensor(s, a->keys[1], r[1], 0, &gn);
    if (st == SP_OK && sg.payload)
        gn = n;
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
    if (st == SP_OK && (!(w = malloc(bytes)) || (!sg.payload && !(g = malloc(bytes))) ||
                        (a->nkeys == 3 && !(v = calloc(1, bytes)))))
        st = sp_Error(SP_ERR_NOMEM, "redis: out of memory");
    if (st == SP_OK)
        st = store_CopyTensor(s, a->keys[0], r[0], w, n, 0);
    if (st == SP_OK && g)
        st = store_CopyTensor(s, a->keys[1], r[1], g, n, 0);
    if (st == SP_OK && v_exists)
        st = store_CopyTensor(s, a->keys[2], r[2], v, n, 0);
    if (st == SP_OK && sg.payload) {
        /* The module's sparse kernels, before the replies (and the pairs
         * in them) go. */
        if (v)
            kern_SgdMomentumSparse(w, v, sg.payload, (size_t)sg.count, a->lr, a->mom, a->wd);
        else
            kern_SgdSparse(w, sg.payload, (size_t)sg.count, a->lr, a->wd);
    }
    store_FreeN(r, ngets);
    if (st == SP_OK) {
        /* The module's kernels: the same bits as SPIRT.UPDATE. */
        if (g && v)
            kern_SgdMomentum(w, g, v, (size_t)n, a->lr, a->mom, a->wd);
        else if (g)
            kern_Sgd(w, g, (size_t)n, a->lr, a->wd);
        st = upd_Write(s, a, w, v, (size_t)n);
    } else {
        upd_Unwatch(s, a);
    }
    free(w);
    free(g);
    free(v);
    return st;
}

static spStatus upd_InDb(store *s, const upd_args *a, int *duplicate)
{
    char num[4][32];
    snprintf(num[0], sizeof num[0], "%.9g", (double)a->lr);
    snprintf(num[1], sizeof num[1], "%.9g", (double)a->mom);
    snprintf(num[2], sizeof num[2], "%.9g", (double)a->wd);
    snprintf(num[3], sizeof num[3], "%ld", a->iteration);
    const char *argv[10] = {"SPIRT.UPDATE", a->keys[0], a->keys[1], num[0], num[1], num[2]};
    int argc = 6;
    if (a->nkeys == 3)
        argv[argc++] = a->keys[2];
    if (a->marker) {
        argv[argc++] = "MARK";
        argv[argc++] = a->marker;
        argv[argc++] = num[3];
    }
    redisReply *r;
    spStatus st = store_ExecArgv(s, argc, argv, &r);
    if (st != SP_OK)
        return st;
    if (r->type != REDIS_REPLY_STATUS)
        st = store_Fail(s, r, "SPIRT.UPDATE");
    else
        *duplicate = strcmp(r->str, "DUPLICATE") == 0;
    freeReplyObject(r);
    return st;
}

static spStatus upd_Run(store *s, const upd_args *a, int *duplicate, int *in_db)
{
    int dup = 0;
    if (in_db)
        *in_db = 0;
    if (duplicate)
        *duplicate = 0;
    const char *params_key = a->keys[0], *grad_key = a->keys[1], *mom_key = a->keys[2];
    if (!params_key || !*params_key || !grad_key || !*grad_key || (mom_key && !*mom_key))
        return sp_Error(SP_ERR_INVALID, "update: missing params or grad key");
    if (!isfinite(a->lr) || !isfinite(a->mom) || !isfinite(a->wd))
        return sp_Error(SP_ERR_INVALID, "update: lr %g, momentum %g, weight_decay %g not all finite",
                        (double)a->lr, (double)a->mom, (double)a->wd);
    if (a->mom != 0.0f && !mom_key)
        return sp_Error(SP_ERR_INVALID, "update: momentum %g needs a mom_key", (double)a->mom);
    const char *marker = a->marker;
    if (strcmp(params_key, grad_key) == 0 ||
        (mom_key && (strcmp(mom_key, params_key) == 0 || strcmp(mom_key, grad_key) == 0)) ||
        (marker && (strcmp(marker, params_key) == 0 || strcmp(marker, grad_key) == 0 ||
                    (mom_key && strcmp(marker, mom_key) == 0))))
        return sp_Error(SP_ERR_INVALID, "update: params, grad, mom_key and the marker must be "
                        "distinct keys");
    if (marker && (!*marker || a->iteration < 0))
        return sp_Error(SP_ERR_INVALID, "update: empty marker key or negative iteration %ld",
                        a->iteration);
    int module = store_HasModule(s);
    if (in_db)
        *in_db = module;
    spStatus st = module ? upd_InDb(s, a, &dup) : upd_Local(s, a, &dup);
    if (duplicate)
        *duplicate = dup;
    return st;
}

spStatus store_Update(store *s, const char *params_key, const char *grad_key,
                      const char *mom_key, float lr, float momentum, float weight_decay,
                      int *in_db)
{
    upd_args a = {.keys = {params_key, grad_key, mom_key}, .nkeys = mom_key ? 3 : 2,
                  .lr = lr, .mom = momentum, .wd = weight_decay};
    return upd_Run(s, &a, NULL, in_db);
}

spStatus store_UpdateMarked(store *s, const char *params_key, const char *grad_key,
                            const char *mom_key, float lr, float momentum, float weight_decay,
                            const char *marker_key, long iteration, int *duplicate, int *in_db)
{
    if (!marker_key)
        return sp_Error(SP_ERR_INVALID, "update: a marked update needs its marker key");
    upd_args a = {.keys = {params_key, grad_key, mom_key}, .nkeys = mom_key ? 3 : 2,
                  .lr = lr, .mom = momentum, .wd = weight_decay, .marker = marker_key,
                  .iteration = iteration};
    return upd_Run(s, &a, duplicate, in_db);
}
