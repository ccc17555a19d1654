/* redismodule_api.h - the few Redis module API entry points spirt uses.
 *
 * Debian ships no redismodule.h, so this declares our own view of the ABI:
 * opaque handle types, the constants we rely on, and one table of function
 * pointers filled at load time through the server's GetApi function (the
 * first pointer-sized field of the context handed to RedisModule_OnLoad).
 * Signatures follow the Redis 7 module API reference. The table is a single
 * struct rather than loose globals so no symbol of ours can collide with
 * the RM_* functions the server itself exports. */
#ifndef SPIRT_REDISMODULE_API_H
#define SPIRT_REDISMODULE_API_H

#include <stddef.h>
#include <stdint.h>

#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1

#define REDISMODULE_READ (1 << 0)
#define REDISMODULE_WRITE (1 << 1)

#define REDISMODULE_KEYTYPE_EMPTY 0
#define REDISMODULE_KEYTYPE_STRING 1

#define REDISMODULE_NO_EXPIRE -1

typedef long long mstime_t;
typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleString RedisModuleString;
typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

typedef struct {
    int (*GetApi)(const char *name, void *target);
    int (*CreateCommand)(RedisModuleCtx *ctx, const char *name, RedisModuleCmdFunc fn,
                         const char *flags, int firstkey, int lastkey, int keystep);
    void (*SetModuleAttribs)(RedisModuleCtx *ctx, const char *name, int ver, int apiver);
    int (*IsModuleNameBusy)(const char *name);
    int (*WrongArity)(RedisModuleCtx *ctx);
    int (*ReplyWithError)(RedisModuleCtx *ctx, const char *err);
    int (*ReplyWithLongLong)(RedisModuleCtx *ctx, long long ll);
    int (*ReplyWithSimpleString)(RedisModuleCtx *ctx, const char *msg);
    int (*ReplyWithStringBuffer)(RedisModuleCtx *ctx, const char *buf, size_t len);
    RedisModuleKey *(*OpenKey)(RedisModuleCtx *ctx, RedisModuleString *name, int mode);
    void (*CloseKey)(RedisModuleKey *key);
    int (*KeyType)(RedisModuleKey *key);
    char *(*StringDMA)(RedisModuleKey *key, size_t *len, int mode);
    int (*StringTruncate)(RedisModuleKey *key, size_t newlen);
    int (*DeleteKey)(RedisModuleKey *key);
    int (*SetExpire)(RedisModuleKey *key, mstime_t expire);
    const char *(*StringPtrLen)(const RedisModuleString *str, size_t *len);
    int (*StringToLongLong)(const RedisModuleString *str, long long *ll);
    int (*StringToDouble)(const RedisModuleString *str, double *d);
    int (*ReplicateVerbatim)(RedisModuleCtx *ctx);
    int (*IsKeysPositionRequest)(RedisModuleCtx *ctx);
    void (*KeyAtPos)(RedisModuleCtx *ctx, int pos);
    void *(*Alloc)(size_t bytes);
    void (*Free)(void *ptr);
} rm_api;

/* Everything the module defines stays out of the server's symbol namespace;
 * only RedisModule_OnLoad is exported. */
#define MOD_LOCAL __attribute__((visibility("hidden")))

/* The table, filled by rm_Bind. */
extern MOD_LOCAL rm_api RM;

/* Fills RM from the server and registers the module name; REDISMODULE_ERR
 * if the server lacks an entry point we need or the name is taken. */
MOD_LOCAL int rm_Bind(RedisModuleCtx *ctx, const char *name, int ver);

#endif
