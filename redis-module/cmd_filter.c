/* cmd_filter.c - SPIRT.FILTER acc_out sparse_out ttl_ms params src scale thr
 *                              [acc_in]
 *
 * The MLLESS significance filter inside the database (core/kernels.h
 * kern_Filter): acc = acc_in + scale * src (no acc_in: zeros); the
 * elements with |acc_i| > thr * |params_i| go to sparse_out as a sparse
 * tensor (WIRE_SPARSE_F32 of params' length) and are zeroed; the rest are
 * stored as acc_out, the residual. Replies the pairs sent. acc_out and
 * sparse_out are new values (the accumulator is versioned by iteration, so
 * a retry reads the same acc_in and writes the same outputs); every key
 * must be distinct, and every input is validated and the result checked
 * finite before anything is written. */
#include <math.h>
#include <string.h>
#include <strings.h>

#include "commands.h"
#include "core/crc32c.h"
#include "core/kernels.h"
#include "core/wire.h"
#include "mod_tensor.h"

#define FILTER_MAX_TTL_MS (1LL << 42)

typedef struct {
    mod_tensor acc, sparse, w, src, in;
    int has_in;
    float scale, thr;
    long long ttl;
} flt_job;

static int flt_Args(RedisModuleString **argv, int argc, flt_job *j, mod_err *e)
{
    if (mod_ArgMillis(argv[3], &j->ttl) != REDISMODULE_OK || j->ttl > FILTER_MAX_TTL_MS) {
        mod_SetErr(e, "ERR", "bad argument: ttl_ms must be an integer from 0 to %lld",
                   FILTER_MAX_TTL_MS);
        return REDISMODULE_ERR;
    }
    if (mod_ArgFloat(argv[6], &j->scale) != REDISMODULE_OK ||
        mod_ArgFloat(argv[7], &j->thr) != REDISMODULE_OK || j->thr < 0) {
        mod_SetErr(e, "ERR", "bad argument: scale and thr must be finite numbers, thr >= 0");
        return REDISMODULE_ERR;
    }
    j->acc.name = argv[1];
    j->sparse.name = argv[2];
    j->w.name = argv[4];
    j->src.name = argv[5];
    j->has_in = argc == 9;
    if (j->has_in)
        j->in.name = argv[8];
    RedisModuleString *names[5] = {argv[1], argv[2], argv[4], argv[5], j->has_in ? argv[8] : 0};
    for (int a = 0; a < 5; a++)
        for (int b = a + 1; b < 5; b++)
            if (names[a] && names[b] && mod_SameName(names[a], names[b])) {
                mod_SetErr(e, "ERR", "bad argument: acc_out, sparse_out, params, src and "
                           "acc_in must be distinct keys");
                return REDISMODULE_ERR;
            }
    return REDISMODULE_OK;
}

static int flt_Open(RedisModuleCtx *ctx, flt_job *j, mod_err *e)
{
    int exists;
    if (mod_OpenTensor(ctx, &j->w, REDISMODULE_READ, e) != REDISMODULE_OK ||
        mod_OpenTensor(ctx, &j->src, REDISMODULE_READ, e) != REDISMODULE_OK ||
        (j->has_in && mod_OpenTensor(ctx, &j->in, REDISMODULE_READ, e) != REDISMODULE_OK))
        return REDISMODULE_ERR;
    if (j->src.count != j->w.count || (j->has_in && j->in.count != j->w.count)) {
        mod_SetErr(e, "ERR", "size mismatch: params has %llu elements, src %llu, acc_in %llu",
                   (unsigned long long)j->w.count, (unsigned long long)j->src.count,
                   (unsigned long long)(j->has_in ? j->in.count : j->w.count));
        return REDISMODULE_ERR;
    }
    if (j->w.count > UINT32_MAX) {
        mod_SetErr(e, "ERR", "size mismatch: %llu elements do not fit a sparse tensor",
                   (unsigned long long)j->w.count);
        return REDISMODULE_ERR;
    }
    if (mod_OpenTarget(ctx, &j->acc, &exists, e) != REDISMODULE_OK ||
        mod_OpenTarget(ctx, &j->sparse, &exists, e) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}

/* Writes `bytes` of payload under a header into t, with the expiry. */
static int flt_Put(flt_job *j, mod_tensor *t, wire_dtype dt, uint64_t count, const void *payload,
                   size_t bytes, uint32_t extra)
{
    uint8_t *out = mod_Writable(t, WIRE_HEADER_SIZE + bytes);
    if (!out)
        return REDISMODULE_ERR;
    if (bytes)
        memcpy(out + WIRE_HEADER_SIZE, payload, bytes);
    wire_PutHeader(out, dt, count, crc32c(0, out + WIRE_HEADER_SIZE, bytes), extra);
    RM.SetExpire(t->key, j->ttl > 0 ? j->ttl : REDISMODULE_NO_EXPIRE);
    return REDISMODULE_OK;
}

static int flt_Run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, flt_job *j)
{
    mod_err e;
    if (flt_Args(argv, argc, j, &e) != REDISMODULE_OK || flt_Open(ctx, j, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    size_t n = (size_t)j->w.count;
    float *acc = RM.Alloc(n ? n * sizeof *acc : 1);
    unsigned char *pairs = RM.Alloc(n ? n * KERN_PAIR : 1);
    size_t k = kern_Filter(acc, j->has_in ? (const ufloat *)(j->in.buf + WIRE_HEADER_SIZE) : NULL,
                           (const ufloat *)(j->src.buf + WIRE_HEADER_SIZE), j->scale,
                           (const ufloat *)(j->w.buf + WIRE_HEADER_SIZE), n, j->thr, pairs);
    int finite = 1;
    for (size_t i = 0; i < n && finite; i++)
        finite = isfinite(acc[i]);
    for (size_t i = 0; i < k && finite; i++) {
        float v;
        memcpy(&v, pairs + KERN_PAIR * i + 4, sizeof v);
        finite = isfinite(v);
    }
    int rc = REDISMODULE_ERR;
    if (!finite)
        mod_SetErr(&e, "ERR", "not finite: the accumulated update holds NaN or Inf; nothing "
                   "written");
    else if ((rc = flt_Put(j, &j->acc, WIRE_F32, n, acc, n * sizeof *acc, 0)) != REDISMODULE_OK ||
             (rc = flt_Put(j, &j->sparse, WIRE_SPARSE_F32, k, pairs, k * KERN_PAIR,
                           (uint32_t)n)) != REDISMODULE_OK)
        mod_SetErr(&e, "ERR", "cannot write the filter's outputs");
    RM.Free(acc);
    RM.Free(pairs);
    if (rc != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    RM.ReplicateVerbatim(ctx);
    return RM.ReplyWithLongLong(ctx, (long long)k);
}

int cmd_Filter(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (RM.IsKeysPositionRequest(ctx)) {
        static const int at[] = {1, 2, 4, 5, 8};
        for (int i = 0; i < 5; i++)
            if (at[i] < argc)
                RM.KeyAtPos(ctx, at[i]);
        return REDISMODULE_OK;
    }
    if (argc != 8 && argc != 9)
        return RM.WrongArity(ctx);
    flt_job j;
    memset(&j, 0, sizeof j);
    int rc = flt_Run(ctx, argv, argc, &j);
    mod_tensor *opened[] = {&j.acc, &j.sparse, &j.w, &j.src, &j.in};
    for (size_t i = 0; i < sizeof opened / sizeof opened[0]; i++)
        mod_Close(opened[i]);
    return rc;
}
