/* request.h - the common fields of every step request, parsed and checked.
 *
 * The step wrapper (steps_Invoke) calls req_Parse with the fields the
 * step's table entry declares (step_def.need); every missing, mistyped or
 * out-of-range field is SP_ERR_INVALID with a message that names it (so a
 * 400 tells the caller exactly what to fix). The step's
 * own fields are read with the req_Get* helpers, which follow the same
 * rules. Nothing here touches Redis or NATS. */
#ifndef SPIRT_STEPS_REQUEST_H
#define SPIRT_STEPS_REQUEST_H

#include <stddef.h>

#include <cJSON.h>

#include "job/job.h"
#include "ml/model.h"
#include "runtime/runtime.h"
#include "store/store.h"

/* What a step needs from the request (bit flags for req_Parse). */
enum {
    REQ_SHAPE = 1 << 0,     /* "shape": [c,h,w,classes], checked against the model */
    REQ_ITERATION = 1 << 1, /* "iteration": t >= 0 */
    REQ_PEER = 1 << 2,      /* "peer": p < job.workers (and < the configured peer
                             * databases when the job has per-peer ones) */
    REQ_PEERS = 1 << 3,     /* the database of every worker: configured for all
                             * job.workers (SPIRT: SPIRT_REDIS_PEERS, others: the shared) */
    REQ_SHARED = 1 << 4,    /* the shared Redis: configured (SPIRT_REDIS_SHARED) */
    REQ_M = 1 << 5          /* "m": minibatch index, 0 <= m < job.minibatches */
};

/* Request limits, stated once (the job's own are in job/job.h). Shapes
 * beyond these are not images any model here handles; rejecting them early
 * keeps c*h*w and the allocations derived from it small. */
#define REQ_MAX_SIDE 4096
#define REQ_MAX_DIM (1 << 22)
#define REQ_MAX_CLASSES 65536
#define REQ_MAX_ITERATION 1000000000000L
#define REQ_MAX_EPOCH 1000000000

typedef struct {
    job_config job;
    const cJSON *body;
    /* REQ_SHAPE: the job's model with the input shape applied, its size. */
    model_spec spec;
    size_t dim;          /* c*h*w features per row */
    size_t n_params;     /* model_ParamCount */
    long iteration;      /* -1 when absent */
    int epoch;           /* 0 when absent (1-based when given) */
    int peer;            /* -1 when absent */
    int m;               /* REQ_M: the minibatch index; -1 when not asked for */
    int n_peers;         /* job.workers: peer indices are below it */
    int per_peer;        /* job_PerPeerDatabases(job.arch): worker p's database is
                          * the configured peer p's, else the shared Redis */
} step_req;

/* Parses and checks the fields `need` declares, and that the function's
 * configuration has the databases it declares: SP_ERR_INVALID (400) naming
 * a bad field, or a request that carries an address ("peers", "shared",
 * "nats": they come from the configuration only); SP_ERR_UNAVAILABLE (503)
 * naming the variable the configuration lacks. Touches no database. */
spStatus req_Parse(const rt_request *r, unsigned need, step_req *q);

/* Connections (per-thread cached) to the configured shared Redis, to
 * worker i's database (i < n_peers: the configured peer i's, or the shared
 * Redis when the job's workers share it) and to the calling peer's own.
 * What the configuration lacks is SP_ERR_UNAVAILABLE naming the variable;
 * an index beyond the configured peers SP_ERR_INVALID. */
spStatus req_Shared(const step_req *q, store **out);
spStatus req_PeerStore(const step_req *q, int i, store **out);
spStatus req_OwnStore(const step_req *q, store **out);

/* Step-specific fields. `def` is used when the field is absent and
 * required == 0. */
spStatus req_GetInt(const cJSON *o, const char *name, int lo, int hi, int required, int def,
                    int *out);
spStatus req_GetLong(const cJSON *o, const char *name, long lo, long hi, int required, long def,
                     long *out);
spStatus req_GetBool(const cJSON *o, const char *name, int def, int *out);
/* A finite number; *present says whether the field was there. */
spStatus req_GetNumber(const cJSON *o, const char *name, double *out, int *present);
/* A non-empty array of distinct ints in [0, hi); absent -> 0..hi-1 when
 * !required. *out is malloc'd. */
spStatus req_GetPeerList(const cJSON *o, const char *name, int hi, int required, int **out,
                         int *n);
/* An optional string field (NULL when absent); must fit in `cap`. */
spStatus req_GetString(const cJSON *o, const char *name, size_t cap, const char **out);

/* store_Key with the job's id. */
#define req_Key(q, buf, ...) store_Key((buf), sizeof(buf), (q)->job.id, __VA_ARGS__)

#endif
