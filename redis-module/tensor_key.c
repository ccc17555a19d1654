/* tensor_key.c - key access and validation shared by the spirt commands. */
#include "mod_tensor.h"

#include <float.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "core/status.h"
#include "core/wire.h"

void mod_SetErr(mod_err *e, const char *code, const char *fmt, ...)
{
    int n = snprintf(e->text, sizeof e->text, "%s spirt: ", code);
    if (n < 0 || (size_t)n >= sizeof e->text)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->text + n, sizeof e->text - (size_t)n, fmt, ap);
    va_end(ap);
    /* A reply error is one line: keep wire/status messages from breaking it. */
    for (char *p = e->text; *p; p++)
        if (*p == '\r' || *p == '\n')
            *p = ' ';
}

const char *mod_Printable(const RedisModuleString *s, char *buf, size_t cap)
{
    size_t len, j = 0;
    const char *p = RM.StringPtrLen(s, &len);
    for (size_t i = 0; i < len && j + 4 < cap; i++)
        buf[j++] = (p[i] >= 0x20 && p[i] < 0x7f) ? p[i] : '?';
    if (j + 4 >= cap && len > j) {
        buf[j++] = '.';
        buf[j++] = '.';
        buf[j++] = '.';
    }
    buf[j] = '\0';
    return buf;
}

int mod_SameName(const RedisModuleString *a, const RedisModuleString *b)
{
    size_t la, lb;
    const char *pa = RM.StringPtrLen(a, &la);
    const char *pb = RM.StringPtrLen(b, &lb);
    return la == lb && memcmp(pa, pb, la) == 0;
}

/* check: verify the checksum; sparse: accept a sparse tensor (whose pairs
 * are then validated too, which needs the checksum checked first). */
static int open_Tensor(RedisModuleCtx *ctx, mod_tensor *t, int mode, int check, int sparse,
                       mod_err *e)
{
    char name[96];
    t->key = RM.OpenKey(ctx, t->name, mode);
    int type = t->key ? RM.KeyType(t->key) : REDISMODULE_KEYTYPE_EMPTY;
    if (type == REDISMODULE_KEYTYPE_EMPTY) {
        mod_SetErr(e, "ERR", "no such key '%s'", mod_Printable(t->name, name, sizeof name));
        return REDISMODULE_ERR;
    }
    if (type != REDISMODULE_KEYTYPE_STRING) {
        mod_SetErr(e, "WRONGTYPE", "key '%s' does not hold a string",
                   mod_Printable(t->name, name, sizeof name));
        return REDISMODULE_ERR;
    }
    /* Read access never changes the value's bytes (it may re-encode it). */
    t->buf = (uint8_t *)RM.StringDMA(t->key, &t->len, REDISMODULE_READ);
    wire_view v;
    if (!t->buf || (check ? wire_Parse : wire_ParseUnchecked)(t->buf, t->len, &v) != SP_OK) {
        mod_SetErr(e, "ERR", "corrupt tensor at '%s': %s",
                   mod_Printable(t->name, name, sizeof name),
                   t->buf ? sp_LastError() : "no direct access");
        return REDISMODULE_ERR;
    }
    if (v.dtype != WIRE_F32 && !(sparse && v.dtype == WIRE_SPARSE_F32)) {
        mod_SetErr(e, "ERR",
                   "wrong dtype: key '%s' holds dtype %d, not a %s float32 tensor",
                   mod_Printable(t->name, name, sizeof name), (int)v.dtype,
                   sparse ? "dense or sparse" : "dense");
        return REDISMODULE_ERR;
    }
    if (v.dtype == WIRE_SPARSE_F32 && wire_CheckSparse(&v) != SP_OK) {
        mod_SetErr(e, "ERR", "corrupt tensor at '%s': %s",
                   mod_Printable(t->name, name, sizeof name), sp_LastError());
        return REDISMODULE_ERR;
    }
    t->count = v.count;
    t->crc = v.crc;
    t->dtype = (int)v.dtype;
    t->extra = v.extra;
    return REDISMODULE_OK;
}

int mod_OpenTensor(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e)
{
    return open_Tensor(ctx, t, mode, 1, 0, e);
}

int mod_OpenTensorUnchecked(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e)
{
    return open_Tensor(ctx, t, mode, 0, 0, e);
}

int mod_OpenDenseOrSparse(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e)
{
    return open_Tensor(ctx, t, mode, 1, 1, e);
}

int mod_CheckPayload(const mod_tensor *t, uint32_t crc, mod_err *e)
{
    char name[96];
    wire_view v = {.crc = t->crc};
    if (wire_CheckCrc(&v, crc) == SP_OK)
        return REDISMODULE_OK;
    mod_SetErr(e, "ERR", "corrupt tensor at '%s': %s", mod_Printable(t->name, name, sizeof name),
               sp_LastError());
    return REDISMODULE_ERR;
}

int mod_OpenTarget(RedisModuleCtx *ctx, mod_tensor *t, int *exists, mod_err *e)
{
    char name[96];
    t->key = RM.OpenKey(ctx, t->name, REDISMODULE_READ | REDISMODULE_WRITE);
    if (!t->key) {
        mod_SetErr(e, "ERR", "cannot open '%s' for writing",
                   mod_Printable(t->name, name, sizeof name));
        return REDISMODULE_ERR;
    }
    int type = RM.KeyType(t->key);
    if (type != REDISMODULE_KEYTYPE_EMPTY && type != REDISMODULE_KEYTYPE_STRING) {
        mod_SetErr(e, "WRONGTYPE", "key '%s' does not hold a string",
                   mod_Printable(t->name, name, sizeof name));
        return REDISMODULE_ERR;
    }
    *exists = type == REDISMODULE_KEYTYPE_STRING;
    t->buf = NULL;
    t->len = 0;
    return REDISMODULE_OK;
}

uint8_t *mod_Writable(mod_tensor *t, size_t len)
{
    size_t cur = 0;
    if (RM.KeyType(t->key) == REDISMODULE_KEYTYPE_STRING)
        RM.StringDMA(t->key, &cur, REDISMODULE_READ);
    else
        cur = (size_t)-1; /* empty: Truncate creates the string */
    if (cur != len && RM.StringTruncate(t->key, len) != REDISMODULE_OK)
        return NULL;
    /* Write access unshares the value, so the pointer may move: refresh. */
    t->buf = (uint8_t *)RM.StringDMA(t->key, &t->len, REDISMODULE_WRITE);
    if (t->buf && t->len != len)
        t->buf = NULL;
    return t->buf;
}

void mod_Close(mod_tensor *t)
{
    if (t->key)
        RM.CloseKey(t->key);
    t->key = NULL;
    t->buf = NULL;
}

int mod_ArgFloat(const RedisModuleString *s, float *out)
{
    double d;
    if (RM.StringToDouble(s, &d) != REDISMODULE_OK || !isfinite(d) || fabs(d) > FLT_MAX)
        return REDISMODULE_ERR;
    *out = (float)d;
    return REDISMODULE_OK;
}

int mod_ArgMillis(const RedisModuleString *s, long long *out)
{
    long long v;
    if (RM.StringToLongLong(s, &v) != REDISMODULE_OK || v < 0)
        return REDISMODULE_ERR;
    *out = v;
    return REDISMODULE_OK;
}
