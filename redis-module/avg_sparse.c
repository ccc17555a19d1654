/* avg_sparse.c - SPIRT.AVG dst ttl_ms src1 [src2 ...] on sparse sources
 * (cmd_avg.c hands a call over when its first source is sparse).
 *
 * Sparse tensors (WIRE_SPARSE_F32, one dense length): dst is
 * a sparse tensor over the union of the sources' indices, each value the
 * mean over all k sources with absent elements counting as 0
 * (core/kernels.h kern_MeanSparse, the dense mean's rounding). A source
 * named twice counts twice; dst must not be a source. Every source is
 * validated (dtype, checksum, pairs, equal dense lengths) before dst is
 * written, and a mean holding NaN or Inf is refused with nothing written. */
#include <math.h>
#include <string.h>

#include "commands.h"
#include "core/crc32c.h"
#include "core/kernels.h"
#include "core/wire.h"
#include "mod_tensor.h"

#define AVG_SPARSE_MAX_TTL_MS (1LL << 42)

typedef struct {
    mod_tensor *u;      /* distinct sources */
    int nu;
    const unsigned char **in;  /* per argument: its payload */
    size_t *counts;            /* per argument: its pairs */
    size_t *pos;
    mod_tensor dst;
} savg_job;

static int savg_Open(RedisModuleCtx *ctx, savg_job *j, RedisModuleString **srcs, int k,
                     mod_err *e)
{
    char a[96];
    for (int i = 0; i < k; i++) {
        if (mod_SameName(srcs[i], j->dst.name)) {
            mod_SetErr(e, "ERR", "bad argument: dst '%s' is also a source",
                       mod_Printable(srcs[i], a, sizeof a));
            return REDISMODULE_ERR;
        }
        int g = 0;
        while (g < j->nu && !mod_SameName(j->u[g].name, srcs[i]))
            g++;
        if (g == j->nu) {
            memset(&j->u[g], 0, sizeof j->u[g]);
            j->u[g].name = srcs[i];
            j->nu++;
            if (mod_OpenDenseOrSparse(ctx, &j->u[g], REDISMODULE_READ, e) != REDISMODULE_OK)
                return REDISMODULE_ERR;
            if (j->u[g].dtype != WIRE_SPARSE_F32) {
                mod_SetErr(e, "ERR", "wrong dtype: key '%s' holds a dense tensor, not a sparse "
                           "one", mod_Printable(srcs[i], a, sizeof a));
                return REDISMODULE_ERR;
            }
            if (j->u[g].extra != j->u[0].extra) {
                mod_SetErr(e, "ERR", "size mismatch: '%s' has dense length %u, the first "
                           "source %u", mod_Printable(srcs[i], a, sizeof a), j->u[g].extra,
                           j->u[0].extra);
                return REDISMODULE_ERR;
            }
        }
        j->in[i] = j->u[g].buf + WIRE_HEADER_SIZE;
        j->counts[i] = (size_t)j->u[g].count;
    }
    return REDISMODULE_OK;
}

static int savg_Run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, savg_job *j)
{
    mod_err e;
    char a[96];
    long long ttl;
    if (mod_ArgMillis(argv[2], &ttl) != REDISMODULE_OK || ttl > AVG_SPARSE_MAX_TTL_MS) {
        mod_SetErr(&e, "ERR", "bad argument: ttl_ms must be an integer from 0 to %lld",
                   AVG_SPARSE_MAX_TTL_MS);
        return RM.ReplyWithError(ctx, e.text);
    }
    int k = argc - 3, exists;
    j->dst.name = argv[1];
    if (savg_Open(ctx, j, argv + 3, k, &e) != REDISMODULE_OK ||
        mod_OpenTarget(ctx, &j->dst, &exists, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    size_t cap = 0;
    for (int i = 0; i < k; i++)
        cap += j->counts[i];
    unsigned char *mean = RM.Alloc(cap ? cap * KERN_PAIR : 1);
    size_t n = kern_MeanSparse(mean, j->in, j->counts, k, j->pos);
    for (size_t i = 0; i < n; i++) {
        float v;
        memcpy(&v, mean + KERN_PAIR * i + 4, sizeof v);
        if (!isfinite(v)) {
            RM.Free(mean);
            mod_SetErr(&e, "ERR", "not finite: the average for '%s' holds NaN or Inf (the sum "
                       "overflows); nothing written", mod_Printable(argv[1], a, sizeof a));
            return RM.ReplyWithError(ctx, e.text);
        }
    }
    uint8_t *out = mod_Writable(&j->dst, WIRE_HEADER_SIZE + n * KERN_PAIR);
    if (!out) {
        RM.Free(mean);
        mod_SetErr(&e, "ERR", "cannot write to '%s'", mod_Printable(argv[1], a, sizeof a));
        return RM.ReplyWithError(ctx, e.text);
    }
    memcpy(out + WIRE_HEADER_SIZE, mean, n * KERN_PAIR);
    RM.Free(mean);
    wire_PutHeader(out, WIRE_SPARSE_F32, n, crc32c(0, out + WIRE_HEADER_SIZE, n * KERN_PAIR),
                   j->u[0].extra);
    RM.SetExpire(j->dst.key, ttl > 0 ? ttl : REDISMODULE_NO_EXPIRE);
    RM.ReplicateVerbatim(ctx);
    return RM.ReplyWithLongLong(ctx, (long long)n);
}

int avg_Sparse(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    int k = argc - 3;
    savg_job j;
    memset(&j, 0, sizeof j);
    j.u = RM.Alloc(sizeof *j.u * (size_t)k);
    j.in = RM.Alloc(sizeof *j.in * (size_t)k);
    j.counts = RM.Alloc(sizeof *j.counts * (size_t)k);
    j.pos = RM.Alloc(sizeof *j.pos * (size_t)k);
    int rc = savg_Run(ctx, argv, argc, &j);
    for (int g = 0; g < j.nu; g++)
        mod_Close(&j.u[g]);
    mod_Close(&j.dst);
    RM.Free(j.u);
    RM.Free(j.in);
    RM.Free(j.counts);
    RM.Free(j.pos);
    return rc;
}

int avg_FirstIsSparse(RedisModuleCtx *ctx, RedisModuleString *src)
{
    RedisModuleKey *key = RM.OpenKey(ctx, src, REDISMODULE_READ);
    int sparse = 0;
    if (key && RM.KeyType(key) == REDISMODULE_KEYTYPE_STRING) {
        size_t len = 0;
        const uint8_t *p = (const uint8_t *)RM.StringDMA(key, &len, REDISMODULE_READ);
        wire_view v;
        sparse = p && len >= WIRE_HEADER_SIZE && wire_ParseHeader(p, &v) == SP_OK &&
                 v.dtype == WIRE_SPARSE_F32;
    }
    if (key)
        RM.CloseKey(key);
    return sparse;
}
