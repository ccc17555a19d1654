/* cmd_update.c - SPIRT.UPDATE params grad lr momentum weight_decay [mom_key]
 *                              [MARK marker_key iteration]
 *
 * SGD with momentum and weight decay, in place on the params value:
 *   v = momentum * v + (g + wd * w);  w -= lr * v    (with mom_key)
 *   w -= lr * (g + wd * w)                            (momentum 0, no mom_key)
 * with the rounding of core/kernels.h, shared with the client-side
 * fallback and the single-process optimizer. A sparse grad (WIRE_SPARSE_F32
 * of params' length) updates only the elements it lists, and their
 * momentum (the sparse models' lazy update).
 * The momentum buffer is created as zeros on first use. Every key and
 * argument is validated before anything is written.
 *
 * MARK makes applying an iteration and recording it one act. marker_key
 * holds the last iteration applied (decimal text, absent: none). The same
 * iteration again is answered DUPLICATE and changes nothing (a retry, or a
 * replay after a crash that lost the reply); an older one is refused
 * ("stale"); otherwise the update runs and the marker becomes the
 * iteration in the same command. A command is executed, and written to the
 * AOF, whole, so no crash can leave an update applied but not recorded. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "core/wire.h"
#include "core/kernels.h"
#include "mod_tensor.h"

typedef struct {
    mod_tensor w, g, v;
    float lr, mom, wd;
    int has_v;
    int v_exists;
    mod_tensor mark;        /* MARK: marker_key, opened as a plain string */
    int has_mark;
    long long iteration;    /* MARK: the iteration this update applies */
} upd_job;

/* MARK's three arguments at argv[at..at+2]. */
static int mark_Args(RedisModuleString **argv, int at, upd_job *j, mod_err *e)
{
    size_t len;
    const char *word = RM.StringPtrLen(argv[at], &len);
    if (len != 4 || strncasecmp(word, "MARK", 4) != 0) {
        mod_SetErr(e, "ERR", "bad argument: expected MARK marker_key iteration after the keys");
        return REDISMODULE_ERR;
    }
    j->has_mark = 1;
    j->mark.name = argv[at + 1];
    if (RM.StringToLongLong(argv[at + 2], &j->iteration) != REDISMODULE_OK || j->iteration < 0) {
        mod_SetErr(e, "ERR", "bad argument: the iteration is not a non-negative integer");
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

/* *last = the marker's iteration, -1 when the key is empty. */
static int mark_Read(RedisModuleCtx *ctx, upd_job *j, long long *last, mod_err *e)
{
    char name[96], text[24];
    int exists;
    *last = -1;
    if (mod_OpenTarget(ctx, &j->mark, &exists, e) != REDISMODULE_OK || !exists)
        return exists ? REDISMODULE_ERR : REDISMODULE_OK;
    size_t len = 0;
    const char *p = RM.StringDMA(j->mark.key, &len, REDISMODULE_READ);
    int ok = p && len > 0 && len < sizeof text;
    if (ok) {
        memcpy(text, p, len);
        text[len] = '\0';
        char *end;
        *last = strtoll(text, &end, 10);
        ok = *end == '\0' && *last >= 0;
    }
    if (!ok) {
        mod_SetErr(e, "ERR", "corrupt marker: '%s' does not hold an iteration number",
                   mod_Printable(j->mark.name, name, sizeof name));
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

static int mark_Write(upd_job *j)
{
    char text[24];
    int n = snprintf(text, sizeof text, "%lld", j->iteration);
    uint8_t *p = mod_Writable(&j->mark, (size_t)n);
    if (!p)
        return REDISMODULE_ERR;
    memcpy(p, text, (size_t)n);
    return REDISMODULE_OK;
}

static int upd_Args(RedisModuleString **argv, int argc, upd_job *j, mod_err *e)
{
    static const char *names[] = {"lr", "momentum", "weight_decay"};
    float *dst[] = {&j->lr, &j->mom, &j->wd};
    for (int i = 0; i < 3; i++) {
        if (mod_ArgFloat(argv[3 + i], dst[i]) != REDISMODULE_OK) {
            mod_SetErr(e, "ERR", "bad argument: %s is not a finite number", names[i]);
            return REDISMODULE_ERR;
        }
    }
    j->w.name = argv[1];
    j->g.name = argv[2];
    j->has_v = argc == 7 || argc == 10;
    if (j->has_v)
        j->v.name = argv[6];
    if (argc >= 9 && mark_Args(argv, argc - 3, j, e) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    if (j->mom != 0.0f && !j->has_v) {
        mod_SetErr(e, "ERR", "bad argument: momentum %g needs a mom_key", (double)j->mom);
        return REDISMODULE_ERR;
    }
    /* One handle per key: aliasing params, grad and momentum is refused. */
    if (mod_SameName(j->w.name, j->g.name) ||
        (j->has_v && (mod_SameName(j->v.name, j->w.name) || mod_SameName(j->v.name, j->g.name))) ||
        (j->has_mark &&
         (mod_SameName(j->mark.name, j->w.name) || mod_SameName(j->mark.name, j->g.name) ||
          (j->has_v && mod_SameName(j->mark.name, j->v.name))))) {
        mod_SetErr(e, "ERR", "bad argument: params, grad, mom_key and marker_key must be "
                   "distinct keys");
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

static int upd_Validate(RedisModuleCtx *ctx, upd_job *j, mod_err *e)
{
    char a[96];
    if (mod_OpenTensor(ctx, &j->w, REDISMODULE_READ | REDISMODULE_WRITE, e) != REDISMODULE_OK ||
        mod_OpenDenseOrSparse(ctx, &j->g, REDISMODULE_READ, e) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    if (j->g.dtype == WIRE_SPARSE_F32 ? j->g.extra != j->w.count : j->g.count != j->w.count) {
        mod_SetErr(e, "ERR", "size mismatch: params has %llu elements, grad %llu",
                   (unsigned long long)j->w.count,
                   (unsigned long long)(j->g.dtype == WIRE_SPARSE_F32 ? j->g.extra : j->g.count));
        return REDISMODULE_ERR;
    }
    if (!j->has_v)
        return REDISMODULE_OK;
    if (mod_OpenTarget(ctx, &j->v, &j->v_exists, e) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    if (!j->v_exists)
        return REDISMODULE_OK;
    mod_Close(&j->v);
    if (mod_OpenTensor(ctx, &j->v, REDISMODULE_READ | REDISMODULE_WRITE, e) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    if (j->v.count != j->w.count) {
        mod_SetErr(e, "ERR", "size mismatch: params has %llu elements, momentum '%s' %llu",
                   (unsigned long long)j->w.count, mod_Printable(j->v.name, a, sizeof a),
                   (unsigned long long)j->v.count);
        return REDISMODULE_ERR;
    }
    return REDISMODULE_OK;
}

static int upd_Run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, upd_job *j)
{
    mod_err e;
    long long last = -1;
    if (upd_Args(argv, argc, j, &e) != REDISMODULE_OK ||
        (j->has_mark && mark_Read(ctx, j, &last, &e) != REDISMODULE_OK))
        return RM.ReplyWithError(ctx, e.text);
    /* Judged before the tensors: a duplicate's aggregate may be gone. */
    if (j->has_mark && last == j->iteration)
        return RM.ReplyWithSimpleString(ctx, "DUPLICATE");
    if (j->has_mark && last > j->iteration) {
        mod_SetErr(&e, "ERR", "stale: iteration %lld, but %lld is applied already",
                   j->iteration, last);
        return RM.ReplyWithError(ctx, e.text);
    }
    if (upd_Validate(ctx, j, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    size_t len = j->w.len;
    uint8_t *w = mod_Writable(&j->w, len);
    uint8_t *v = NULL;
    if (w && j->has_v) {
        v = mod_Writable(&j->v, len);
        if (v && !j->v_exists) {
            memcpy(v, w, WIRE_HEADER_SIZE); /* same dtype and count as params */
            memset(v + WIRE_HEADER_SIZE, 0, len - WIRE_HEADER_SIZE);
        }
    }
    if (!w || (j->has_v && !v)) {
        mod_SetErr(&e, "ERR", "cannot get write access to the tensors");
        return RM.ReplyWithError(ctx, e.text);
    }
    /* Resizing a short string fails only if memory does, which ends the
     * server: nothing in between can separate the update from its record. */
    if (j->has_mark && mark_Write(j) != REDISMODULE_OK) {
        mod_SetErr(&e, "ERR", "cannot write the marker");
        return RM.ReplyWithError(ctx, e.text);
    }
    /* Only the grad pointer from validation is still current (read-only). */
    const ufloat *g = (const ufloat *)(j->g.buf + WIRE_HEADER_SIZE);
    if (j->g.dtype == WIRE_SPARSE_F32 && j->has_v)
        kern_SgdMomentumSparse((ufloat *)(w + WIRE_HEADER_SIZE), (ufloat *)(v + WIRE_HEADER_SIZE),
                               j->g.buf + WIRE_HEADER_SIZE, j->g.count, j->lr, j->mom, j->wd);
    else if (j->g.dtype == WIRE_SPARSE_F32)
        kern_SgdSparse((ufloat *)(w + WIRE_HEADER_SIZE), j->g.buf + WIRE_HEADER_SIZE, j->g.count,
                       j->lr, j->wd);
    else if (j->has_v)
        kern_SgdMomentum((ufloat *)(w + WIRE_HEADER_SIZE), g, (ufloat *)(v + WIRE_HEADER_SIZE),
                         j->w.count, j->lr, j->mom, j->wd);
    else
        kern_Sgd((ufloat *)(w + WIRE_HEADER_SIZE), g, j->w.count, j->lr, j->wd);
    wire_Reseal(w, len);
    if (v)
        wire_Reseal(v, len);
    RM.ReplicateVerbatim(ctx);
    return RM.ReplyWithSimpleString(ctx, "OK");
}

int cmd_Update(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (RM.IsKeysPositionRequest(ctx)) {
        if (argc > 1)
            RM.KeyAtPos(ctx, 1);
        if (argc > 2)
            RM.KeyAtPos(ctx, 2);
        if (argc == 7 || argc == 10)
            RM.KeyAtPos(ctx, 6);
        if (argc >= 9)
            RM.KeyAtPos(ctx, argc - 2);
        return REDISMODULE_OK;
    }
    if (argc != 6 && argc != 7 && argc != 9 && argc != 10)
        return RM.WrongArity(ctx);
    upd_job j;
    memset(&j, 0, sizeof j);
    int rc = upd_Run(ctx, argv, argc, &j);
    mod_Close(&j.w);
    mod_Close(&j.g);
    mod_Close(&j.v);
    mod_Close(&j.mark);
    return rc;
}
