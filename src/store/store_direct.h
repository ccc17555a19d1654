/* store_direct.h - tensor SET and GET that bypass hiredis's buffers
 * (store_direct.c explains why). Internal to src/store. */
#ifndef SPIRT_STORE_DIRECT_H
#define SPIRT_STORE_DIRECT_H

#include "core/wire.h"
#include "store/store_internal.h"

/* 1 when the connection is healthy and hiredis holds nothing queued or
 * unparsed, on a little-endian host (payloads are used as host floats). */
int direct_Usable(const store *s);

/* SET key to the concatenation a + b (either may be empty), with
 * "EX ttl_s" when ttl_s > 0 and KEEPTTL when keepttl; reads the reply. */
spStatus direct_Set(store *s, const char *key, const void *a, size_t alen, const void *b,
                    size_t blen, int ttl_s, int keepttl);

/* Sends what hiredis has queued (the GETs whose replies direct_GetTensor
 * reads). */
spStatus direct_Flush(store *s, const char *what);

/* Reading replies: a small buffer for their framing, carried from one
 * reply to the next. direct_InDone hands back to hiredis whatever was read
 * past the last reply. */
typedef struct {
    store *s;
    char buf[4096];
    size_t pos, len;
} direct_in;

void direct_InInit(direct_in *d, store *s);
void direct_InDone(direct_in *d);

/* Reads an array reply's length line (MGET): *n elements follow. */
spStatus direct_ArrayLen(direct_in *d, long long *n, const char *what);

/* Reads the reply of one GET of a dense float32 wire tensor: dest(ctx, n)
 * gives the memory for its n floats (NULL: out of memory), which receives
 * the payload straight from the socket; then the checksum and finiteness
 * are checked. expect_n != 0 requires that count. A missing key is
 * SP_ERR_NOT_FOUND, a corrupt blob SP_ERR_FORMAT, a wrong dtype or length
 * SP_ERR_INVALID - the stream stays usable after those; a failed
 * connection leaves the store broken. */
spStatus direct_GetTensor(direct_in *d, const char *key, uint64_t expect_n,
                          float *(*dest)(void *ctx, uint64_t n), void *ctx, uint64_t *count);

#endif
