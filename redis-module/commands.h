/* commands.h - the spirt command handlers registered by module.c. */
#ifndef SPIRT_MODULE_COMMANDS_H
#define SPIRT_MODULE_COMMANDS_H

#include "redismodule_api.h"

MOD_LOCAL int cmd_Avg(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
MOD_LOCAL int cmd_Update(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
