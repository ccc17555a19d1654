/* commands.h - the spirt command handlers registered by module.c. */
#ifndef SPIRT_MODULE_COMMANDS_H
#define SPIRT_MODULE_COMMANDS_H

#include "redismodule_api.h"

MOD_LOCAL int cmd_Avg(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
/* avg_sparse.c: SPIRT.AVG on sparse sources, and the test for them. */
MOD_LOCAL int avg_Sparse(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
MOD_LOCAL int avg_FirstIsSparse(RedisModuleCtx *ctx, RedisModuleString *src);
MOD_LOCAL int cmd_Rows(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
MOD_LOCAL int cmd_Filter(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
MOD_LOCAL int cmd_Update(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
