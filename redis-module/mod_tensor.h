/* mod_tensor.h - opening and validating wire-format tensors held in keys.
 *
 * A command first opens and validates every key it touches, and only then
 * changes anything, so a failed call leaves every key as it was. Each
 * distinct key name is opened exactly once per command: two handles on one
 * key would go stale when either unshares the value for direct access. */
#ifndef SPIRT_MODULE_TENSOR_H
#define SPIRT_MODULE_TENSOR_H

#include <stddef.h>
#include <stdint.h>

#include "redismodule_api.h"

/* Commands compute on wire payloads in place, as host floats (through
 * core/kernels.h's unaligned `ufloat`): the payload is little-endian. */
#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the spirt Redis module computes on wire payloads directly: little-endian hosts only"
#endif

typedef struct {
    RedisModuleString *name;
    RedisModuleKey *key;   /* NULL until opened */
    uint8_t *buf;          /* the value's bytes (direct access) */
    size_t len;
    uint64_t count;        /* float32 elements (pairs for a sparse tensor) */
    uint32_t crc;          /* the header's checksum of the payload */
    int dtype;             /* WIRE_F32, or WIRE_SPARSE_F32 where a command accepts it */
    uint32_t extra;        /* a sparse tensor's dense length */
} mod_tensor;

/* Reply error texts are built here: "<CODE> spirt: <message>". A message
 * starts with a phrase that classifies it, and the client maps the phrase
 * to a status (src/store/store_errors.c): "no such key" (not found),
 * "corrupt tensor" (format), "wrong dtype", "size mismatch", "not finite",
 * "bad argument" (invalid input); any other ("cannot ...") is a server-side
 * failure. A new error must start with one of these or be added there. */
#define MOD_ERRLEN 512
typedef struct {
    char text[MOD_ERRLEN];
} mod_err;

MOD_LOCAL void mod_SetErr(mod_err *e, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* A printable, bounded rendering of a key name for error messages (key
 * names are binary and must not inject CR/LF into a reply). */
MOD_LOCAL const char *mod_Printable(const RedisModuleString *s, char *buf, size_t cap);

MOD_LOCAL int mod_SameName(const RedisModuleString *a, const RedisModuleString *b);

/* Opens t->name with `mode` (READ, possibly | WRITE) and validates it as a
 * dense float32 wire tensor with a correct checksum. On failure fills `e`
 * and returns REDISMODULE_ERR (t->key may be open: mod_Close it). */
MOD_LOCAL int mod_OpenTensor(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e);

/* mod_OpenTensor, also accepting a sparse tensor (WIRE_SPARSE_F32; its
 * pairs validated as core/wire.h wire_CheckSparse says). */
MOD_LOCAL int mod_OpenDenseOrSparse(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e);

/* The same but for the checksum, which a command that reads the whole
 * payload anyway computes as it goes and hands to mod_CheckPayload (the
 * same error as mod_OpenTensor's for a mismatch) before it writes. */
MOD_LOCAL int mod_OpenTensorUnchecked(RedisModuleCtx *ctx, mod_tensor *t, int mode, mod_err *e);
MOD_LOCAL int mod_CheckPayload(const mod_tensor *t, uint32_t crc, mod_err *e);

/* Opens t->name for writing a new value; fails on a non-string key. Sets
 * t->buf = NULL; *exists reports whether it held a value. */
MOD_LOCAL int mod_OpenTarget(RedisModuleCtx *ctx, mod_tensor *t, int *exists, mod_err *e);

/* Gives t exactly `len` bytes and returns writable direct access to them
 * (creating the key if empty), or NULL. Refreshes t->buf / t->len. */
MOD_LOCAL uint8_t *mod_Writable(mod_tensor *t, size_t len);

MOD_LOCAL void mod_Close(mod_tensor *t);

/* Parses a finite float / a non-negative integer argument. */
MOD_LOCAL int mod_ArgFloat(const RedisModuleString *s, float *out);
MOD_LOCAL int mod_ArgMillis(const RedisModuleString *s, long long *out);

#endif
