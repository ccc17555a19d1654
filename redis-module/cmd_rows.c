/* cmd_rows.c - SPIRT.ROWS key width rows
 *
 * Some rows of a dense float32 tensor in one reply: rows is a string of
 * packed little-endian uint32 row numbers, each naming the `width` floats
 * at row * width; the reply is their bytes, row after row, in the order
 * asked. What a sparse model's gradient step reads of the parameters: a
 * few thousand rows for ~4 bytes each asked instead of a GETRANGE apiece.
 * The header is validated (dtype, every row within the tensor); the
 * payload's checksum is not, as reading a part cannot check it. */
#include <string.h>

#include "commands.h"
#include "core/wire.h"
#include "mod_tensor.h"

/* Far beyond any parameter row of a sparse model's classes. */
#define ROWS_MAX_WIDTH 65536

static int rows_Run(RedisModuleCtx *ctx, RedisModuleString **argv, mod_tensor *t)
{
    mod_err e;
    long long width;
    size_t rlen;
    const char *rows = RM.StringPtrLen(argv[3], &rlen);
    if (RM.StringToLongLong(argv[2], &width) != REDISMODULE_OK || width < 1 ||
        width > ROWS_MAX_WIDTH || rlen % 4 != 0) {
        mod_SetErr(&e, "ERR", "bad argument: width must be 1..%d and rows a multiple of 4 "
                   "bytes", ROWS_MAX_WIDTH);
        return RM.ReplyWithError(ctx, e.text);
    }
    t->name = argv[1];
    if (mod_OpenTensorUnchecked(ctx, t, REDISMODULE_READ, &e) != REDISMODULE_OK)
        return RM.ReplyWithError(ctx, e.text);
    size_t k = rlen / 4, row_bytes = (size_t)width * sizeof(float);
    uint64_t n_rows = t->count / (uint64_t)width;
    char *out = RM.Alloc(k * row_bytes + 1);
    for (size_t i = 0; i < k; i++) {
        uint32_t r;
        memcpy(&r, rows + 4 * i, sizeof r);
        if (r >= n_rows) {
            RM.Free(out);
            mod_SetErr(&e, "ERR", "bad argument: row %u is beyond the %llu rows of width %lld",
                       r, (unsigned long long)n_rows, width);
            return RM.ReplyWithError(ctx, e.text);
        }
        memcpy(out + i * row_bytes, t->buf + WIRE_HEADER_SIZE + (size_t)r * row_bytes,
               row_bytes);
    }
    int rc = RM.ReplyWithStringBuffer(ctx, out, k * row_bytes);
    RM.Free(out);
    return rc;
}

int cmd_Rows(RedisModuleCtx *ctx, RedisModuleString **argv, int argc)
{
    if (argc != 4)
        return RM.WrongArity(ctx);
    mod_tensor t;
    memset(&t, 0, sizeof t);
    int rc = rows_Run(ctx, argv, &t);
    mod_Close(&t);
    return rc;
}
