/* invoke.h - calling a step: over HTTP (a function process or a Knative
 * Service) or in-process, with the same JSON in and out.
 *
 * Idempotent steps are retried on 503 and timeouts with exponential backoff
 * and jitter; the one non-idempotent step (join: verify consumes its nonce) is
 * never replayed. update is retried: its applied marker makes a replay a no-op. */
#ifndef SPIRT_INVOKE_H
#define SPIRT_INVOKE_H

#include <cJSON.h>

#include "core/status.h"

#define INVOKE_MAX_STEPS 32

typedef struct {
    int inproc;                       /* call handlers directly */
    char url_template[512];           /* "http://host/{step}" style, or "" */
    struct {
        char step[32];
        char url[128];
    } local[INVOKE_MAX_STEPS];        /* step -> URL of a local function process */
    int n_local;
    char token[128];                  /* bearer token for POST / */
    int timeout_ms;                   /* per attempt */
    int retries;                      /* attempts after the first, idempotent steps */
} invoker;

/* The URL a step is reached at (SP_ERR_NOT_FOUND if none). */
spStatus invoker_Url(const invoker *v, const char *step, char *buf, size_t cap);

/* Calls `step` with `request`; *response (caller deletes) is the step's JSON
 * answer on success. On failure the status is the step's (400, 503 ...
 * mapped back) with a message naming the step. `attempts` (optional) gets
 * how many calls were made. */
spStatus invoker_Call(const invoker *v, const char *step, const cJSON *request,
                      cJSON **response, int *attempts);

#endif
