/* store.h - the Redis store: binary tensors in a peer's (or the shared) Redis.
 *
 * One `store` is one hiredis connection and is NOT thread-safe; step handlers
 * get theirs from store_Cached(), a per-thread cache keyed by address, so a
 * function server thread reuses its connections across requests. Every
 * command runs with the address's timeout; a dead server is
 * SP_ERR_UNAVAILABLE (retryable), never a hang.
 *
 * Keys are namespaced by job: store_Key(buf, cap, job, "grad:%d:%ld", ...)
 * gives "{job}:grad:...". Tensors are stored in the wire format (core/wire.h)
 * and verified (checksum, size, finiteness) when read back.
 *
 * This is the only code that talks to Redis: no hiredis type crosses this
 * header. Every failure maps to a status in one place (store_errors.c):
 * a dead or stalled server, LOADING, BUSY, OOM, CLUSTERDOWN and the like
 * are retryable (SP_ERR_UNAVAILABLE / SP_ERR_TIMEOUT), refused credentials
 * SP_ERR_AUTH, the module's verdicts on bad input SP_ERR_INVALID /
 * SP_ERR_FORMAT / SP_ERR_NOT_FOUND as the client-side checks give, and
 * anything else SP_ERR_INTERNAL. */
#ifndef SPIRT_STORE_H
#define SPIRT_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

typedef struct {
    char host[256];
    int port;
    char user[64];       /* ACL user; "" = default user */
    char password[128];  /* "" = no AUTH */
    int timeout_ms;      /* connect and per-command timeout; 0 = 5000 */
} store_addr;

typedef struct store store;

/* "host:port" (port defaults to 6379). Credentials are filled separately. */
spStatus store_ParseAddr(const char *s, store_addr *out);

spStatus store_Connect(const store_addr *a, store **out);
void store_Destroy(store *s);
/* A per-thread cached connection to `a` (reconnects if the last one failed).
 * The cache owns it: do not destroy. */
spStatus store_Cached(const store_addr *a, store **out);
/* Drops this thread's cached connections (call at thread exit). */
void store_ReleaseCached(void);

/* Formats "{job}:<fmt...>" into buf; SP_ERR_INVALID if it does not fit or the
 * job name has characters outside [A-Za-z0-9_.-]. */
spStatus store_Key(char *buf, size_t cap, const char *job, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

spStatus store_Ping(store *s);
/* True when the server has the spirt module (SPIRT.AVG) loaded. */
int store_HasModule(store *s);

/* Dense float32 tensors. ttl_s > 0 sets an expiry (iteration-scoped keys). */
spStatus store_PutTensor(store *s, const char *key, const float *x, size_t n, int ttl_s);
/* expect_n = 0 accepts any length. Missing key: SP_ERR_NOT_FOUND. Corrupt
 * blob: SP_ERR_FORMAT. *out is malloc'd. */
spStatus store_GetTensor(store *s, const char *key, size_t expect_n, float **out, size_t *n);
/* Pipelined fetch of k tensors of expect_n floats into caller buffers
 * outs[i] (each expect_n floats). ok[i] (optional) reports per-key success;
 * the call fails only if the connection fails or, when ok is NULL, any key. */
spStatus store_GetTensorsInto(store *s, const char *const *keys, int k, size_t expect_n,
                              float *const *outs, int *ok);

/* The checksum a stored tensor's header holds (its first 24 bytes only: one
 * small read however large the tensor): a digest of the values, e.g. to
 * tell whether two peers hold the same model. Missing: SP_ERR_NOT_FOUND;
 * not a tensor: SP_ERR_FORMAT. */
spStatus store_GetTensorCrc(store *s, const char *key, uint32_t *crc);

/* Raw wire blobs (any dtype) and plain bytes. */
spStatus store_PutBlob(store *s, const char *key, const void *data, size_t len, int ttl_s);
spStatus store_GetBlob(store *s, const char *key, uint8_t **out, size_t *len);
spStatus store_Delete(store *s, const char *key);
spStatus store_Exists(store *s, const char *key, int *exists);

/* Many keys at once (store_batch.c), each one command or one pipeline. */
/* UNLINK of k keys; *removed (optional) is how many of them existed, so
 * removing one key tells whether this call was the one that took it. */
spStatus store_Unlink(store *s, const char *const *keys, int k, int *removed);
/* Byte lengths of k values (pipelined STRLEN): 0 for a missing key, a key
 * of another type is SP_ERR_INVALID. Lets a step check what earlier steps
 * stored without moving the values. */
spStatus store_GetBlobLens(store *s, const char *const *keys, int k, size_t *lens);
/* k small dense float32 tensors of n elements each (dataset rows) with
 * one MGET into out: row i at out + i*n. Each is verified like
 * store_GetTensor; a missing one is SP_ERR_NOT_FOUND naming its key. The
 * whole reply is held at once: keep k*n small (thousands of rows). */
spStatus store_GetRowsInto(store *s, const char *const *keys, int k, size_t n, float *out);
/* k blobs stored in one pipeline (SET, ttl_s as for store_PutBlob). Every
 * reply is read; the first refusal is returned. */
spStatus store_PutBlobs(store *s, const char *const *keys, const void *const *data,
                        const size_t *lens, int k, int ttl_s);

/* k raw values at once (MGET) into malloc'd out[i] (lens[i] bytes); a
 * missing one is SP_ERR_NOT_FOUND naming it, and then nothing is kept. */
spStatus store_GetBlobs(store *s, const char *const *keys, int k, uint8_t **out, size_t *lens);
/* Rows rows[0..k-1] (of `width` floats each) of the dense tensor at key
 * into out (k * width floats), by one SPIRT.ROWS with the module (the row
 * numbers out, the rows back), else by a pipelined GETRANGE a row:
 * what a sparse model's gradient needs of the parameters, without the
 * rest. The header is checked (dtype, expect_n elements unless 0, rows
 * within them); the payload's checksum cannot be, short of reading it all. */
spStatus store_GetTensorRows(store *s, const char *key, uint64_t expect_n, size_t width,
                             const uint32_t *rows, size_t k, float *out);

/* Short strings (store_string.c): auth nonces and tickets. ttl_ms > 0 sets
 * an expiry in milliseconds. PutString replaces any value;
 * PutStringIfAbsent (SET NX) leaves an existing key as it is and reports
 * *created = 0. */
spStatus store_PutString(store *s, const char *key, const char *value, int ttl_ms);
spStatus store_PutStringIfAbsent(store *s, const char *key, const char *value, int ttl_ms,
                                 int *created);
/* The value at key into buf (NUL-terminated, cut to cap-1 bytes); *len is
 * its full length, so a longer value shows. Missing: SP_ERR_NOT_FOUND. */
spStatus store_GetString(store *s, const char *key, char *buf, size_t cap, size_t *len);

/* dst = mean of the k tensors at srcs, inside Redis when the module is
 * loaded (SPIRT.AVG), else fetched, averaged here and stored back.
 * *in_db reports which path ran. Both run kern_Mean (core/kernels.h) over
 * the sources in argument order, so they give the same bits. Sparse
 * sources (WIRE_SPARSE_F32, all of one dense length; judged by the first)
 * give a sparse dst over the union of their indices (kern_MeanSparse);
 * dst must then not be a source. */
spStatus store_Average(store *s, const char *dst, const char *const *srcs, int k, int ttl_s,
                       int *in_db);

/* v = momentum * v + (g + weight_decay * params); params -= lr * v, with v
 * at mom_key (created as zeros when absent; NULL when momentum == 0: then
 * params -= lr * (g + weight_decay * params)), inside Redis when the module
 * is loaded (SPIRT.UPDATE), else client-side. Both run the kernels of
 * core/kernels.h, as optim_Step does: the same bits on every path. */
spStatus store_Update(store *s, const char *params_key, const char *grad_key,
                      const char *mom_key, float lr, float momentum, float weight_decay,
                      int *in_db);

/* store_Update together with its record, as one act: marker_key holds the
 * last iteration applied (decimal text; absent: none). The same iteration
 * again changes nothing and sets *duplicate = 1 (a retry, or a replay after
 * a crash that lost the answer); an older one is SP_ERR_CONFLICT; else the
 * update runs and the marker becomes `iteration`. With the module this is
 * one command (SPIRT.UPDATE ... MARK), so the AOF holds both or neither;
 * without it the reads run under WATCH and the writes in one MULTI/EXEC
 * (refused, SP_ERR_UNAVAILABLE, if another client changed those keys in
 * between; an AOF cut inside the transaction is dropped when it is
 * loaded). `duplicate` and `in_db` may be NULL. */
spStatus store_UpdateMarked(store *s, const char *params_key, const char *grad_key,
                            const char *mom_key, float lr, float momentum, float weight_decay,
                            const char *marker_key, long iteration, int *duplicate, int *in_db);

/* MLLESS's significance filter (core/kernels.h kern_Filter): acc_out =
 * acc_in + scale * src (acc_in NULL: zeros); the elements with |acc_i| >
 * thr * |params_i| are stored at sparse_out (WIRE_SPARSE_F32 of params'
 * length, possibly no pairs) and zeroed, the residual at acc_out, both with
 * ttl_s. Inside Redis when the module is loaded (SPIRT.FILTER), else
 * client-side; *sent = pairs sent. Every key must be distinct. */
typedef struct {
    const char *acc_out, *sparse_out, *params, *src, *acc_in;
    float scale, thr;
    int ttl_s;
} store_filter;
spStatus store_Filter(store *s, const store_filter *f, size_t *sent, int *in_db);

/* Bytes sent and received on this connection since it was opened. */
uint64_t store_BytesOut(const store *s);
uint64_t store_BytesIn(const store *s);


#endif
