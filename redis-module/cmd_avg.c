/* cmd_avg.c - SPIRT.AVG dst ttl_ms src1 [src2 ...]
 *
 * dst = elementwise mean of the source tensors, computed on the values in
 * place (direct access, no copies) and written straight into dst. dst may be
 * one of the sources; a source named twice counts twice. Every source is
 * validated (type, dtype, checksum, equal counts) before dst is changed,
 * and so is the result: a mean holding NaN or Inf (a poisoned source, or a
 * sum that overflows) is refused with an error and nothing is written.
 *
 * One pass over the sources: the mean is formed in chunks that stay in
 * cache while each source's chunk is checksummed (the checksums are
 * compared at the end), the chunk of the mean checked for NaN/Inf and
 * checksummed for the header. Where it goes: a dst that does not exist yet
 * (every training iteration averages into a new key) gets it straight into
 * its new value, and is removed again if anything failed; an existing dst
 * keeps its value until the mean, formed in scratch memory, has passed.
 * Sparse sources (judged by the first) are averaged by avg_sparse.c. */
#include <string.h>

#include "commands.h"
#include "core/crc32c.h"
#include "core/wire.h"
#include "core/kernels.h"
#include "mod_tensor.h"

/* Sources are grouped by name with a quadratic scan; real calls average a
 * few dozen tensors, and the cap keeps a hostile call cheap. */
#define AVG_MAX_SOURCES 4096
/* Far beyond any useful expiry, and small enough that now + ttl cannot
 * overflow inside the server. */
#define AVG_MAX_TTL_MS (1LL << 42)

typedef struct {
    mod_tensor *u;        /* distinct sources; u[0] is dst when dst is a source */
    int *group;           /* source argument i is the key u[group[i]] */
    const ufloat **in;    /* one payload pointer per source argument */
    uint32_t *crc;        /* per distinct source: its payload's checksum, as read */
    int nu;
    int dst_is_src;
    mod_tensor dst;       /* used when dst is not a source */
} avg_job;

/* Groups the k sources by name, so each key is opened once, and puts dst's
 * key (when it is a source) first: it is the one opened for writing. */
static void avg_Group(avg_job *j, RedisModuleString *dst, RedisModuleString **srcs, int k)
{
    for (int i = 0; i < k; i++) {
        int g = 0;
        while (g < j->nu && !mod_SameName(j->u[g].name, srcs[i]))
            g++;
        if (g == j->nu) {
            memset(&j->u[g], 0, sizeof j->u[g]);
            j->u[g].name = srcs[i];
            j->nu++;
        }
        j->group[i] = g;
    }
    for (int g = 0; g < j->nu; g++) {
        if (mod_SameName(j->u[g].name, dst)) {
            mod_tensor t = j->u[0];
            j->u[0] = j->u[g];
            j->u[g] = t;
            for (int i = 0; i < k; i++) {
                if (j->group[i] == g)
                    j->group[i] = 0;
                else if (j->group[i] == 0)
                    j->group[i] = g;
            }
            j->dst_is_src = 1;
            break;
        }
    }
}

static int avg_Validate(RedisModuleCtx *ctx, avg_job *j, mod_err *e)
{
    char a[96], b[96];
    for (int g = 0; g < j->nu; g++) {
        int mode = REDISMODULE_READ | (g == 0 && j->dst_is_src ? REDISMODULE_WRITE : 0);
        if (mod_OpenTensorUnchecked(ctx, &j->u[g], mode, e) != REDISMODULE_OK)
            return REDISMODULE_ERR;
        if (j->u[g].count != j->u[0].count) {
            mod_SetErr(e, "ERR", "size mismatch: '%s' has %llu elements, '%s' %llu",
                       mod_Printable(j->u[0].name, a, sizeof a),
                       (unsigned long long)j->u[0].count,
                       mod_Printable(j->u[g].name, b, sizeof b),
                       (unsigned long long)j->u[g].count);
            return REDISMODULE_ERR;
        }
    }
    return REDISMODULE_OK;
}

/* 1 when no element is NaN or Inf (exponent bits all set). Four lanes at a
 * time in GCC's portable vector type (SSE2 here): GCC's -O2 does not
 * vectorize this reduction itself, and 6x faster it costs next to nothing
 * on a chunk still in cache. */
typedef uint32_t avg_u32x4 __attribute__((vector_size(16)));

static int avg_Finite(const ufloat *x, uint64_t n)
{
    const avg_u32x4 e = {0x7f800000u, 0x7f800000u, 0x7f800000u, 0x7f800000u};
    avg_u32x4 b0 = {0, 0, 0, 0}, b1 = b0;
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        avg_u32x4 v, w;
        memcpy(&v, x + i, sizeof v);
        memcpy(&w, x + i + 4, sizeof w);
        b0 |= (v & e) == e;
        b1 |= (w & e) == e;
    }
    uint32_t bad = 0;
    for (; i < n; i++) {
        uint32_t b;
        memcpy(&b, x + i, sizeof b);
        bad |= (b & 0x7f800000u) == 0x7f800000u;
    }
    b0 |= b1;
    return !(bad | b0[0] | b0[1] | b0[2] | b0[3]);
}

static void avg_NotFinite(mod_err *e, RedisModuleString *dst)
{
    char a[96];
    mod_SetErr(e, "ERR", "not finite: the average for '%s' holds NaN or Inf (a source "
               "is not finite or the sum overflows); nothing written",
               mod_Printable(dst, a, sizeof a));
}

/* 12288 floats (48 KiB: 4 of crc32c's 12 KiB lane groups, 6 of kern_Mean's
 * blocks): a chunk of every source and of the mean stay in L2 while they
 * are checksummed, averaged and checked. */
#define AVG_CHUNK ((uint64_t)12288)

/* out = the mean of the k payloads j->in, chunk by chunk (the mean is
 * elementwise, so chunks change no bit); meanwhile j->crc[g] = each
 * distinct source's payload checksum and *crc_out the mean's. 1 when every
 * element of the mean is finite. */
static int avg_Pass(avg_job *j, ufloat *out, int k, uint64_t n, const ufloat **at,
                    uint32_t *crc_out)
{
    int finite = 1;
    uint32_t co = 0;
    for (int g = 0; g < j->nu; g++)
        j->crc[g] = 0;
    for (uint64_t off = 0; off < n; off += AVG_CHUNK) {
        uint64_t len = n - off < AVG_CHUNK ? n - off : AVG_CHUNK;
        size_t bytes = (size_t)len * sizeof(float);
        for (int g = 0; g < j->nu; g++)
            j->crc[g] = crc32c(j->crc[g], j->u[g].buf + WIRE_HEADER_SIZE + off * 4, bytes);
        for (int i = 0; i < k; i++)
            at[i] = j->in[i] + off;
        kern_Mean(out + off, at, k, (size_t)len);
        finite &= avg_Finite(out + off, len);
        co = crc32c(co, (const ufloat *)(out + off), bytes);
    }
    *crc_out = co;
    return finite;
}

/* After the pass: every source as its header says, and a finite mean. */
static int avg_Passed(avg_job *j, int finite, RedisModuleString *dst, mod_err *e)
{
    for (int g = 0; g < j->nu; g++)
        if (mod_CheckPayload(&j->u[g], j->crc[g], e) != REDISMODULE_OK)
            return 0;
    if (!finite)
        avg_NotFinite(e, dst);
    return finite;
}

/* Returns the writable dst buffer (header in place), or NULL with `e` set. */
static uint8_t *avg_Target(avg_job *j, mod_err *e)
{
    char a[96];
    size_t len = j->u[0].len;
    mod_tensor *t = j->dst_is_src ? &j->u[0] : &j->dst;
    uint8_t *out = mod_Writable(t, len);
    if (!out) {
        mod_SetErr(e, "ERR", "cannot write %zu bytes to '%s'", len,
                   mod_Printable(t->name, a, sizeof a));
        return NULL;
    }
    if (!j->dst_is_src)
        memcpy(out, j->u[0].buf, WIRE_HEADER_SIZE); /* same dtype and count */
    return out;
}

static int avg_Run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, avg_job *j)
{
    mod_err e;
    long long ttl;
    if (mod_ArgMillis(argv[2], &ttl) != REDISMODULE_OK || ttl > AVG_MAX_TTL_MS) {
        mod_SetErr(&e, "ERR", "bad argument: ttl_ms must be an integer from 0 to %lld",
                   AVG_MAX_TTL_MS);
        return RM.ReplyWithError(ctx, e.text);
    }
    j->dst.name = argv[1];
    avg_Group(j, argv[1], argv + 3, argc - 3);
    if (avg_Validate(ctx, j, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    int exists = 1;
    if (!j->dst_is_src && mod_OpenTarget(ctx, &j->dst, &exists, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    /* The sum runs over the arguments as given, repeats included, exactly
     * as the client-side fallback and every other mean in spirt sums. */
    uint64_t n = j->u[0].count;
    int k = argc - 3;
    for (int i = 0; i < k; i++)
        j->in[i] = (const ufloat *)(j->u[j->group[i]].buf + WIRE_HEADER_SIZE);
    const ufloat **at = RM.Alloc(sizeof *at * (size_t)k);
    uint8_t *out = NULL;
    uint32_t crc = 0;
    if (!exists) {
        /* A new key: the mean goes straight into its value (creating dst
         * leaves the sources' bytes where they are); failed, it goes. */
        out = avg_Target(j, &e);
        if (out && !avg_Passed(j, avg_Pass(j, (ufloat *)(out + WIRE_HEADER_SIZE), k, n, at,
                                           &crc), argv[1], &e))
            out = NULL;
        if (!out)
            RM.DeleteKey(j->dst.key);
    } else {
        /* The mean goes to scratch first and is checked there, so a failed
         * call leaves dst (possibly one of the sources) as it was. */
        float *mean = RM.Alloc(n ? (size_t)n * sizeof *mean : 1);
        if (avg_Passed(j, avg_Pass(j, (ufloat *)mean, k, n, at, &crc), argv[1], &e) &&
            (out = avg_Target(j, &e)) != NULL)
            /* Making dst writable may move u[0]'s bytes: only now write them. */
            memcpy(out + WIRE_HEADER_SIZE, mean, (size_t)n * sizeof *mean);
        RM.Free(mean);
    }
    RM.Free(at);
    if (!out)
        return RM.ReplyWithError(ctx, e.text);
    wire_SetChecksum(out, crc);
    mod_tensor *t = j->dst_is_src ? &j->u[0] : &j->dst;
    /* Like SET: a new value carries only the expiry asked for now. */
    RM.SetExpire(t->key, ttl > 0 ? ttl : REDISMODULE_NO_EXPIRE);
    RM.ReplicateVerbatim(ctx);
    return RM.ReplyWithLongLong(ctx, (long long)j->u[0].count);
}

int cmd_Avg(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (RM.IsKeysPositionRequest(ctx)) {
        if (argc > 1)
            RM.KeyAtPos(ctx, 1);
        for (int i = 3; i < argc; i++)
            RM.KeyAtPos(ctx, i);
        return REDISMODULE_OK;
    }
    if (argc < 4)
        return RM.WrongArity(ctx);
    int k = argc - 3;
    if (k > AVG_MAX_SOURCES) {
        mod_err e;
        mod_SetErr(&e, "ERR", "bad argument: %d sources, at most %d", k, AVG_MAX_SOURCES);
        return RM.ReplyWithError(ctx, e.text);
    }
    if (avg_FirstIsSparse(ctx, argv[3]))
        return avg_Sparse(ctx, argv, argc);
    avg_job j;
    memset(&j, 0, sizeof j);
    j.u = RM.Alloc(sizeof *j.u * (size_t)k);
    j.group = RM.Alloc(sizeof *j.group * (size_t)k);
    j.in = RM.Alloc(sizeof *j.in * (size_t)k);
    j.crc = RM.Alloc(sizeof *j.crc * (size_t)k);
    int rc = avg_Run(ctx, argv, argc, &j);
    for (int g = 0; g < j.nu; g++)
        mod_Close(&j.u[g]);
    mod_Close(&j.dst);
    RM.Free(j.u);
    RM.Free(j.group);
    RM.Free(j.in);
    RM.Free(j.crc);
    return rc;
}
