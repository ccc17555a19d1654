/* store_internal.h - what the store's files share: the connection struct,
 * the command helpers that account bytes, and the mapping of failures to
 * spStatus. Nothing outside src/store includes it (tests may, to reach the
 * connection of a store directly). */
#ifndef SPIRT_STORE_INTERNAL_H
#define SPIRT_STORE_INTERNAL_H

#include <hiredis/hiredis.h>

#include "core/wire.h"
#include "store/store.h"

struct store {
    redisContext *c;
    store_addr addr;
    uint64_t bytes_in, bytes_out;
    int module; /* -1 not probed yet, 0 absent, 1 SPIRT.* commands present */
};

/* Queues one command (hiredis format, "%b" for binary) without sending it. */
spStatus store_Append(store *s, const char *fmt, ...);
/* Queues one command given as argv/lengths (binary-safe). */
spStatus store_AppendArgv(store *s, int argc, const char **argv, const size_t *lens);
/* Forgets the commands queued and not sent yet: a pipeline that could not
 * be queued whole must not leave commands whose replies nobody reads. */
void store_DropQueued(store *s);
/* Reads the next reply. Fails only when the connection does (the context is
 * then dead); an error reply is returned as a reply for the caller to map. */
spStatus store_Read(store *s, redisReply **out);
/* Append + Read, and an error reply becomes a status via store_Fail (reply
 * freed). */
spStatus store_Exec(store *s, redisReply **out, const char *fmt, ...);
/* The same for argc NUL-terminated arguments (argv[0] the command). */
spStatus store_ExecArgv(store *s, int argc, const char *const *argv, redisReply **out);

/* The one mapping from a Redis failure to a status (store_errors.c):
 * r == NULL: the connection failed (timeout -> SP_ERR_TIMEOUT, otherwise
 * SP_ERR_UNAVAILABLE); an error reply by its code (store_StatusOfReply);
 * any other reply is of an unexpected type (SP_ERR_INTERNAL). The message
 * names the server and `what` ("GET", "SPIRT.AVG"). */
spStatus store_Fail(const store *s, const redisReply *r, const char *what);
/* The status of an error reply's text ("LOADING ...", "ERR spirt: ...").
 * Pure: no server needed (unit-tested). */
spStatus store_StatusOfReply(const char *err);
/* The status of a dead context: hiredis error code, errno right after the
 * failed call, and the context's errstr. Pure, like the above. */
spStatus store_StatusOfConn(int err, int errno_val, const char *errstr);

/* Reads n replies, keeping them all (NULL-free on success); on a connection
 * failure frees what was read and fails. */
spStatus store_ReadN(store *s, redisReply **replies, int n);
void store_FreeN(redisReply **replies, int n);

/* The first failure among a pipeline's replies, kept with its message
 * while the remaining replies are read (their failures would overwrite
 * the thread's message). */
typedef struct {
    spStatus st;
    char msg[1024];
} store_first;
void store_KeepFirst(store_first *f, spStatus st);
/* SP_OK, or the kept failure with its message restored. */
spStatus store_FirstResult(const store_first *f);

/* GET of a string value: *out is a string reply (caller frees). Missing is
 * SP_ERR_NOT_FOUND, a key of another type fails via store_Fail. */
spStatus store_GetValue(store *s, const char *key, redisReply **out);

/* True once the connection failed (the context must be replaced). */
int store_IsBroken(const store *s);

/* "host:port" of this connection for messages. */
const char *store_Name(const store *s);

/* The wire blob a GET reply holds at key, parsed (v points into the reply):
 * NOT_FOUND for a nil reply, the reply's error for a non-string, FORMAT for
 * a corrupt blob. The dense and sparse checks below start here. */
spStatus store_ReplyWire(const store *s, const char *key, const redisReply *r, wire_view *v);
/* Checks that a GET reply holds a dense float32 wire tensor (expect_n != 0:
 * of exactly that length) and reports its element count. NOT_FOUND for a
 * nil reply, FORMAT for a corrupt blob, INVALID for a wrong dtype/length. */
spStatus store_CheckTensor(const store *s, const char *key, const redisReply *r,
                           uint64_t expect_n, uint64_t *count);
/* Copies a checked reply's n floats into out; with reject_nonfinite a NaN
 * or Inf is SP_ERR_INVALID. */
spStatus store_CopyTensor(const store *s, const char *key, const redisReply *r, float *out,
                          uint64_t n, int reject_nonfinite);
/* Checks that a GET reply holds a valid sparse wire tensor
 * (wire_CheckSparse; dense_n != 0: of that dense length); v points into
 * the reply. Errors as store_CheckTensor's. */
spStatus store_CheckSparse(const store *s, const char *key, const redisReply *r,
                           uint64_t dense_n, wire_view *v);
/* A GET reply holding a sparse wire tensor, judged by its header alone. */
int store_IsSparseReply(const redisReply *r);
/* dst = the sparse mean (kern_MeanSparse) of the sources' GET replies r,
 * each checked with store_CheckSparse (one dense length); a non-finite
 * mean is refused with nothing written. */
spStatus store_MeanSparse(store *s, const char *dst, const char *const *srcs, int k,
                          redisReply **r, int ttl_s);
/* SET with KEEPTTL: rewrites a value in place the way the module does. */
spStatus store_PutTensorKeepTtl(store *s, const char *key, const float *x, size_t n);

#endif
