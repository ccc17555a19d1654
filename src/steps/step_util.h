/* step_util.h - what the step handlers share: timings and byte counts for
 * the answer, a per-thread model cache, the dataset's meta record and row
 * fetching from the shared Redis. Internal to src/steps. */
#ifndef SPIRT_STEP_UTIL_H
#define SPIRT_STEP_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include <cJSON.h>

#include "core/status.h"
#include "data/dataset.h"
#include "runtime/runtime.h"
#include "ml/model.h"
#include "steps/request.h"
#include "store/store.h"
#include "sync/sync.h"

/* Iteration-scoped keys (minibatches, gradients, averages, aggregates)
 * expire after this long: far longer than any iteration, short enough that
 * an abandoned job does not fill the databases. */
#define STEPS_TTL_S 600

/* SP_ERR_INVALID unless the job's optimizer is one the in-database update
 * (SPIRT.UPDATE) runs: sgd or momentum. */
spStatus steps_CheckInDbOptimizer(const step_req *q);

/* Copies src into dst (capacity cap), truncating, always NUL-terminated. */
void steps_CopyStr(char *dst, size_t cap, const char *src);

/* ---- timings and bytes ------------------------------------------------ */
typedef struct {
    double compute_ms, store_ms, sync_ms, transfer_ms; /* < 0: not applicable */
    uint64_t bytes_in, bytes_out;
} step_io;

typedef struct {
    const store *s;
    uint64_t in, out;
} io_snap;

void io_Init(step_io *io);
double io_NowMs(void);
/* *slot += now - t0 (a slot still at -1 starts from 0). */
void io_Add(double *slot, double t0);
io_snap io_Snap(const store *s);
/* Adds what the connection moved since the snapshot. */
void io_Account(step_io *io, const io_snap *snap);
/* Adds "timings" and "bytes" to an answer. */
void io_Answer(cJSON *res, const step_io *io);

/* ---- models ------------------------------------------------------------ */
/* This thread's model object for spec (created on first use, reused while
 * the spec stays the same, so its scratch buffers are reused). */
spStatus steps_Model(const model_spec *spec, model **out);

/* ---- dataset meta ({job}:data:meta on the shared Redis) --------------- */
typedef struct {
    size_t n_train, n_test, dim;
    int c, h, w, classes;
    char dataset[512];
    long train_samples, test_samples;   /* the limits it was loaded with */
    char nonce[40];                     /* changes on every upload */
    int sparse;                         /* rows stored sparse (data_sparse.c) */
} data_meta;

/* *exists = 0 (and SP_OK) when there is no meta; a corrupt one is
 * SP_ERR_FORMAT. */
spStatus meta_Read(store *shared, const char *job, data_meta *m, int *exists);
spStatus meta_Write(store *shared, const char *job, const data_meta *m);
/* The request's shape must describe the dataset that was loaded. */
spStatus meta_CheckShape(const data_meta *m, const step_req *q);

/* A chunk of row keys: names[i] ({job}:data:<split>:<idx[i]>) for rows
 * idx[0..k-1], pointed to by keys[i]. */
#define ROWS_KEY_CAP 160
spStatus rows_Keys(const char *job, const char *split, const size_t *idx, int k,
                   char (*names)[ROWS_KEY_CAP], const char **keys);

/* Fetches rows idx[0..b-1] of split ("train"/"test") into rows (b*(dim+1)
 * floats: features then label) with chunked MGETs, verifying each blob.
 * The bytes moved count on the store's connection (io_Snap / io_Account). */
spStatus rows_Fetch(store *shared, const char *job, const char *split, const size_t *idx,
                    size_t b, size_t dim, float *rows);
/* A minibatch as the minibatch step stores it in the peer's Redis: the
 * indices of its b rows in the shared Redis' train split, wire WIRE_I32 (a
 * few hundred bytes instead of the rows). PutIndices stores them (ttl_s as
 * for store_PutBlob); GetIndices reads them back into a malloc'd *idx:
 * missing -> SP_ERR_NOT_FOUND naming the key and the minibatch step, a
 * corrupt blob SP_ERR_FORMAT, another dtype, 0 or more than max_b indices or
 * a negative one SP_ERR_INVALID, each naming the key. */
spStatus rows_PutIndices(store *s, const char *key, const size_t *idx, size_t b, int ttl_s);
spStatus rows_GetIndices(store *s, const char *key, size_t max_b, size_t **idx, size_t *b);
/* Splits packed rows into features and labels; a label that is not an
 * integer in [0, classes) is SP_ERR_INVALID. */
spStatus rows_Split(const float *rows, size_t b, size_t dim, int classes, float *x,
                    int32_t *y);

/* Stores every row of d as {job}:data:<split>:<i>, pipelined (bytes count
 * on the connection like rows_Fetch's). */
spStatus rows_Upload(store *s, const char *job, const char *split, const dataset *d);

/* A sparse dataset's rows (data_sparse.c): each a sparse wire tensor of
 * dense length dim + 1, the label at index dim. Upload as rows_Upload;
 * FetchSparse reads rows idx[0..b-1] of split into a CSR batch in buf
 * (view in *out) and their labels into y, checking every blob (dense
 * length, pairs, a label in [0, classes)) and naming the row's key. */
spStatus rows_UploadSparse(store *s, const char *job, const char *split, const dataset *d);
spStatus rows_FetchSparse(store *shared, const char *job, const char *split, const size_t *idx,
                          size_t b, size_t dim, int classes, dataset_batch *buf, csr_rows *out,
                          int32_t *y);

/* ---- waits ---------------------------------------------------------------- */
/* How long a step may wait: the request's "timeout_ms" (default
 * job.sync_timeout_ms), cut to end before the request's deadline with time
 * to answer (SP_ERR_TIMEOUT when none is left). */
spStatus steps_WaitMs(const rt_request *req, const step_req *q, int *ms);
/* Adds to the answer's "timeouts" (steps/fields.h) one wait that ended
 * because its time ran out: what it waited for, how long, for whom. The
 * executor reports every one (details.timeouts), so no wait passes
 * silently. */
void steps_AddTimeout(cJSON *res, const char *wait, double ms, const int *members, int n);

/* ---- NATS ---------------------------------------------------------------- */
/* The topic of the barrier's decisions: the live set of iteration t
 * (sync_Decide). A resumed run forgets them (init). */
#define STEPS_LIVE_TOPIC "live"

/* The NATS connection of a step: the configured server (steps_Config()
 * ->nats_url, SPIRT_NATS_URL) with the configured credentials - a request
 * never names one. None configured is SP_ERR_UNAVAILABLE naming the
 * variable (the function, not the request, lacks it). */
spStatus steps_Nats(sync_conn **out);
/* 1 when a NATS server is configured. */
int steps_HasNats(void);

/* ---- stored tensors ------------------------------------------------------ */
/* Checks that each key holds a dense float32 tensor of n elements (by its
 * stored length, without fetching it): missing -> SP_ERR_NOT_FOUND, other
 * size -> SP_ERR_INVALID, both naming the key and the step that should have
 * written it. */
spStatus steps_CheckTensors(store *s, const char *const *keys, int k, size_t n,
                            const char *writer);

#endif
