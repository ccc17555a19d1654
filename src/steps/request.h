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
    REQ_PEER = 1 << 2,      /* "peer": p, and p < len(peers) when peers are given */
    REQ_PEERS = 1 << 3,     /* "peers": ["host:port", ...] */
    REQ_SHARED = 1 << 4,    /* "shared": "host:port" */
    REQ_M = 1 << 5          /* "m": minibatch index, 0 <= m < job.minibatches */
};

/* Request limits, stated once (the job's own are in job/job.h). "peers"
 * lists one database per worker. Shapes beyond these are not images any
 * model here handles; rejecting them early keeps c*h*w and the allocations
 * derived from it small. */
#define REQ_MAX_PEERS JOB_MAX_WORKERS
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
    int n_peers;         /* 0 when absent */
    store_addr *peers;   /* n_peers addresses with steps_Config() credentials */
    int has_shared;
    store_addr shared;
} step_req;

spStatus req_Parse(const rt_request *r, unsigned need, step_req *q);
void req_Free(step_req *q);

/* Connections (per-thread cached) to the shared Redis, to peers[i], and to
 * the calling peer's own database (peers[peer], or the shared Redis when
 * the request has no "peers", as the single-database architectures do). */
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
