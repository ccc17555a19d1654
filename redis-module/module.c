/* module.c - the spirt Redis module: in-database tensor ops for SPIRT.
 *
 *   SPIRT.AVG dst ttl_ms src1 [src2 ...]      -> element count
 *             (sparse sources: a sparse mean  -> its pairs)
 *   SPIRT.ROWS key width rows                 -> the rows' floats (rows: packed
 *             little-endian uint32 row numbers of a dense tensor)
 *   SPIRT.UPDATE params grad lr momentum weight_decay [mom_key]
 *                [MARK marker_key iteration]           -> OK | DUPLICATE
 *                (grad dense, or sparse: only its elements move)
 *   SPIRT.FILTER acc_out sparse_out ttl_ms params src scale thr [acc_in]
 *                -> pairs sent (MLLESS's significance filter, cmd_filter.c)
 *
 * Tensors are spirt wire-format blobs (core/wire.h) in plain string keys,
 * so clients GET/SET them as usual and the module works on them in place.
 * Loaded with `redis-server --loadmodule spirt_redis.so`. */
#include "commands.h"
#include "redismodule_api.h"

/* The key arguments are not one evenly spaced range (ttl_ms and the float
 * arguments sit between keys), so both commands answer key-position
 * requests themselves ("getkeys-api"); the declared range is just the
 * first key. */
int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
    __attribute__((visibility("default")));

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    (void)argv;
    (void)argc;
    if (rm_Bind(ctx, "spirt", 1) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    if (RM.CreateCommand(ctx, "spirt.avg", cmd_Avg, "write deny-oom getkeys-api", 1, 1, 1) !=
            REDISMODULE_OK ||
        RM.CreateCommand(ctx, "spirt.rows", cmd_Rows, "readonly", 1, 1, 1) != REDISMODULE_OK ||
        RM.CreateCommand(ctx, "spirt.update", cmd_Update, "write deny-oom getkeys-api", 1, 1,
                         1) != REDISMODULE_OK ||
        RM.CreateCommand(ctx, "spirt.filter", cmd_Filter, "write deny-oom getkeys-api", 1, 1,
                         1) != REDISMODULE_OK)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
