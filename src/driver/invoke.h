/* invoke.h - calling a step, whatever carries the call.
 *
 * The invoker owns what every call shares - retries with backoff, the
 * step's idempotency, error wrapping - and hands each attempt to a
 * transport: a small table of function pointers (HTTP to a function process
 * or a Knative Service; the handlers in this process; a fake one in the
 * executor's tests). A new transport plugs in without touching the invoker
 * or the executor.
 *
 * Idempotent steps are retried on retryable errors (503, timeouts) with
 * exponential backoff and jitter. Every step is idempotent but join, whose
 * verify consumes its nonce: a replay would be refused, so a failed join
 * starts over with a new challenge instead (driver/join_auth.h). */
#ifndef SPIRT_INVOKE_H
#define SPIRT_INVOKE_H

#include <cJSON.h>

#include "core/status.h"

#define INVOKE_MAX_STEPS 32

typedef struct invoker invoker;

typedef struct {
    const char *name;                 /* "http", "inproc": reports say which ran */
    /* One attempt: *response (caller deletes) is the step's JSON answer on
     * success; on failure the status says what went wrong (retryable or
     * not) with sp_Error set. */
    spStatus (*call)(const invoker *v, const char *step, const cJSON *request,
                     cJSON **response);
    /* Releases what this thread cached for the transport (connections);
     * called by every thread that made calls, before it ends. May be NULL. */
    void (*thread_done)(void);
} invoke_transport;

/* Each step a function process or a Knative Service, by URL. */
extern const invoke_transport invoke_Http;
/* The step handlers called in this process (--transport inproc). */
extern const invoke_transport invoke_Inproc;

struct invoker {
    const invoke_transport *transport;
    void *ctx;                        /* the transport's own state (tests) */
    char url_template[512];           /* "http://host/{step}" style, or "" */
    struct {
        char step[32];
        char url[128];
    } local[INVOKE_MAX_STEPS];        /* step -> URL of a local function process */
    int n_local;
    char token[128];                  /* bearer token for POST / */
    int timeout_ms;                   /* per attempt */
    int retries;                      /* attempts after the first, idempotent steps */
};

/* The URL a step is reached at (SP_ERR_NOT_FOUND if none). */
spStatus invoker_Url(const invoker *v, const char *step, char *buf, size_t cap);

/* Calls `step` with `request`; *response (caller deletes) is the step's JSON
 * answer on success. On failure the status is the step's (400, 503 ...
 * mapped back) with a message naming the step. `attempts` (optional) gets
 * how many calls were made. */
spStatus invoker_Call(const invoker *v, const char *step, const cJSON *request,
                      cJSON **response, int *attempts);

/* What the attempts of one call met: how many were made and, for the ones
 * that ended by timeout (SP_ERR_TIMEOUT: a step's wait or the transport's
 * deadline ran out), how long each took and the first one's message - a
 * timeout a retry hid must still be reported, not pass silently. */
#define INVOKE_TRACE_MAX 8
typedef struct {
    int attempts;
    int n_timeouts;                       /* may exceed INVOKE_TRACE_MAX */
    double timeout_ms[INVOKE_TRACE_MAX];  /* the first ones' durations */
    char timeout_msg[256];
} invoke_trace;

/* invoker_Call, filling *trace (required). */
spStatus invoker_CallTraced(const invoker *v, const char *step, const cJSON *request,
                            cJSON **response, invoke_trace *trace);

/* The calling thread is done with v's transport (see thread_done). */
void invoker_ThreadDone(const invoker *v);

#endif
